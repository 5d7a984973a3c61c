"""factory-boy factories for the test suite."""

import factory
from django.contrib.auth import get_user_model

from apps.people.models import Person

PASSWORD = "test-pass-123"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class AdminUserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    user = factory.SubFactory(UserFactory)
    email = factory.LazyAttribute(lambda p: p.user.email if p.user else "")
    name = factory.Faker("name")
    level = 2
    manager = None
