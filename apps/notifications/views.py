"""The notification settings page: which mails the signed-in person gets."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from apps.people.selectors import person_for_user
from ladder_tracker.errors import NotFoundError

from .forms import NotificationPreferenceForm
from .selectors import notification_preferences_get
from .services import notification_preferences_update


@login_required
def preferences_page(request):
    person = person_for_user(user=request.user)
    if person is None:
        raise NotFoundError("You have no person profile; ask an admin to create one.")
    preference = notification_preferences_get(person=person)
    form = NotificationPreferenceForm(request.POST or None, instance=preference)
    if request.method == "POST" and form.is_valid():
        notification_preferences_update(
            actor=request.user, **{name: form.cleaned_data[name] for name in form.fields}
        )
        messages.success(request, "Notification settings saved.")
        return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {"form": form})
