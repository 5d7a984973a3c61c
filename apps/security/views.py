"""The "API tokens" page: list, create (the secret shown once, in that answer only),
revoke; and the admins' change history page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ladder_tracker.errors import ApplicationError, InvalidError, form_error

from . import selectors, services
from .forms import ApiTokenForm

# The new secret crosses the redirect in the (server-side) session and is popped by the
# page that shows it, so a reload neither shows it again nor makes a second token.
NEW_TOKEN_KEY = "security_new_token"


@login_required
def token_page(request):
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, plain = services.token_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            request.session[NEW_TOKEN_KEY] = {"id": token.pk, "plain": plain}
            return redirect("security:tokens")
    new = request.session.pop(NEW_TOKEN_KEY, None)
    tokens = list(selectors.token_list(viewer=request.user))
    created = next((t for t in tokens if new and t.pk == new["id"]), None)
    context = {
        "form": form,
        "tokens": tokens,
        "created": created,
        "plain": new["plain"] if created else None,
    }
    response = render(request, "security/tokens.html", context, status=400 if form.errors else 200)
    if new:
        response["Cache-Control"] = "no-store"  # the secret must not sit in a cache
    return response


@login_required
@require_POST
def token_revoke_page(request, token_id: int):
    token = selectors.token_get(viewer=request.user, token_id=token_id)
    services.token_revoke(actor=request.user, token=token)
    messages.success(request, f"Revoked “{token.name}” ({token.prefix}…).")
    return redirect("security:tokens")


HISTORY_PAGE_SIZE = 50


@login_required
def history_page(request):
    """The change history of configuration (admins; anyone else gets the 403 page): pick a
    kind of object, optionally one object; newest first, each change's before and after."""
    model = request.GET.get("model") or "people.person"
    object_id = request.GET.get("object") or None
    try:
        object_id = int(object_id) if object_id is not None else None
        if object_id is not None and not 0 < object_id < 2**63:
            raise ValueError
    except ValueError:
        object_id = None
    try:
        rows = selectors.history_queryset(viewer=request.user, model=model, object_id=object_id)
    except InvalidError:
        model = "people.person"
        rows = selectors.history_queryset(viewer=request.user, model=model, object_id=object_id)
    page = Paginator(rows, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "models": sorted(selectors.AUDITED_MODELS),
        "model": model,
        "object_id": object_id,
        "page": page,
        "changes": selectors.history_changes(rows=list(page.object_list)),
    }
    return render(request, "security/history.html", context)
