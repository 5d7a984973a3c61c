"""The "API tokens" page: list, create (the secret shown once, in that answer only),
revoke."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ladder_tracker.errors import ApplicationError, form_error

from . import selectors, services
from .forms import ApiTokenForm


@login_required
def token_page(request):
    form = ApiTokenForm(request.POST or None)
    created = plain = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created, plain = services.token_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    expires_in_days=form.cleaned_data["expires_in_days"],
                )
                form = ApiTokenForm()
            except ApplicationError as exc:
                form_error(form, exc)
        if form.errors:
            status = 400
    context = {
        "form": form,
        "tokens": selectors.token_list(viewer=request.user),
        "created": created,
        "plain": plain,
    }
    response = render(request, "security/tokens.html", context, status=status)
    if plain:
        response["Cache-Control"] = "no-store"  # the secret must not sit in a cache
    return response


@login_required
@require_POST
def token_revoke_page(request, token_id: int):
    token = selectors.token_get(viewer=request.user, token_id=token_id)
    services.token_revoke(actor=request.user, token=token)
    messages.success(request, f"Revoked “{token.name}” ({token.prefix}…).")
    return redirect("security:tokens")
