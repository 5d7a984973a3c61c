"""A small org with a cycle: engineer erin (level 2) → manager omar → skip-level maria;
committee member cora (outside the chain); a peer; accepted evidence for erin."""

import pytest
from rest_framework.test import APIClient

from apps.evidence.services import evidence_create
from tests.factories import PersonFactory


@pytest.fixture
def org(ladder):
    maria = PersonFactory(user__username="maria", ladder=ladder, level=5, name="Maria")
    omar = PersonFactory(user__username="omar", ladder=ladder, level=4, manager=maria,
                         name="Omar")  # fmt: skip
    erin = PersonFactory(user__username="erin", ladder=ladder, level=2, manager=omar,
                         name="Erin")  # fmt: skip
    peer = PersonFactory(user__username="peer", ladder=ladder, level=2, manager=omar)
    cora = PersonFactory(user__username="cora", ladder=ladder, level=5, is_committee=True)
    return {"maria": maria, "omar": omar, "erin": erin, "peer": peer, "cora": cora}


@pytest.fixture
def erin_evidence(org):
    erin = org["erin"]
    return [evidence_create(person=erin, actor=erin.user, title=f"Work {i}") for i in range(3)]


def client_for(person) -> APIClient:
    client = APIClient()
    client.force_authenticate(person.user)
    return client
