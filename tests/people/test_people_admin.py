"""Admins manage people through the API: create, update, the org chart, CSV import."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.people.models import LevelChange, Person
from tests.factories import PersonFactory, UserFactory

pytestmark = pytest.mark.django_db

PEOPLE = "/api/v1/people/"
IMPORT = "/api/v1/people/import/"
User = get_user_model()


def _people_state():
    return (
        list(Person.objects.order_by("pk").values_list(
            "pk", "name", "email", "title", "ladder_id", "level", "manager_id", "is_committee",
            "is_active", "user_id",
        )),
        list(User.objects.order_by("pk").values_list("pk", "username", "email")),
        LevelChange.objects.count(),
    )  # fmt: skip


def _detail(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]["detail"]


# --- create ----------------------------------------------------------------------------------


def test_admin_creates_a_person_with_a_login(admin_api, admin_user, ladder, engineer):
    response = admin_api.post(
        PEOPLE,
        {"username": "newt", "email": "Newt@Example.com", "name": "Newt Scamander",
         "title": "ML Engineer", "ladder": "ai-ml-engineer", "level": 3,
         "manager": engineer.pk, "is_committee": True},
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: body[k] for k in ("username", "email", "name", "ladder", "level", "manager",
                                 "is_committee", "is_active")} == {
        "username": "newt", "email": "Newt@Example.com", "name": "Newt Scamander",
        "ladder": "ai-ml-engineer", "level": 3, "manager": engineer.pk, "is_committee": True,
        "is_active": True,
    }  # fmt: skip
    person = Person.objects.get(pk=body["id"])
    assert person.user.username == "newt"
    assert not person.user.is_staff
    assert not person.user.has_usable_password()
    change = LevelChange.objects.get(person=person)
    assert (change.from_level, change.to_level) == (None, 3)
    assert change.changed_by == admin_user
    assert admin_api.get(f"{PEOPLE}{person.pk}/level-history/").json()[0]["changed_by"] == "root"


def test_admin_creates_with_a_password_that_works(admin_api, api, db):
    admin_api.post(
        PEOPLE,
        {"username": "pw", "email": "pw@example.com", "name": "Pw", "password": "s3cret-pw!"},
        format="json",
    )

    assert User.objects.get(username="pw").check_password("s3cret-pw!")


def test_create_may_set_is_active(admin_api, db):
    response = admin_api.post(
        PEOPLE, {"username": "gone", "email": "gone@example.com", "name": "Gone",
                 "is_active": False}, format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.content
    assert response.json()["is_active"] is False
    assert Person.objects.get(user__username="gone").is_active is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "erin", "email": "new@example.com", "name": "X"}, "username"),
        ({"username": "ghost", "email": "new@example.com", "name": "X"}, "username"),
        ({"username": "new", "email": "ERIN@Example.COM", "name": "X"}, "email"),
        (
            {
                "username": "new",
                "email": "new@example.com",
                "name": "X",
                "ladder": "ai-ml-engineer",
                "level": 7,
            },
            "level",
        ),
        ({"username": "new", "email": "new@example.com", "name": "X", "level": 2}, "level"),
        (
            {
                "username": "new",
                "email": "new@example.com",
                "name": "X",
                "ladder": "no-such-ladder",
            },
            "ladder",
        ),
        (
            {"username": "new", "email": "new@example.com", "name": "X", "manager": 999_999},
            "manager",
        ),
        ({"username": "has space", "email": "new@example.com", "name": "X"}, "username"),
        ({"username": "new", "email": "not-an-email", "name": "X"}, "email"),
        ({"username": "new", "email": "new@example.com"}, "name"),
        (
            {"username": "new", "email": "new@example.com", "name": "X", "password": "short"},
            "password",
        ),
    ],  # fmt: skip
    ids=[
        "username-taken",
        "username-taken-by-a-bare-login",
        "email-taken-any-case",
        "level-not-in-ladder",
        "level-without-ladder",
        "unknown-ladder",
        "unknown-manager",
        "bad-username",
        "bad-email",
        "no-name",
        "short-password",
    ],  # fmt: skip
)
def test_create_refusals(admin_api, engineer, body, field):
    UserFactory(username="ghost")
    before = _people_state()

    response = admin_api.post(PEOPLE, body, format="json")

    assert response.status_code == 400
    assert field in _detail(response)
    assert _people_state() == before


# --- update ----------------------------------------------------------------------------------


def test_level_change_writes_history_with_actor(admin_api, admin_user, engineer):
    response = admin_api.patch(f"{PEOPLE}{engineer.pk}/", {"level": 3}, format="json")

    assert response.status_code == 200
    assert response.json()["level"] == 3
    change = LevelChange.objects.get(person=engineer)
    assert (change.from_level, change.to_level, change.changed_by) == (2, 3, admin_user)
    history = admin_api.get(f"{PEOPLE}{engineer.pk}/level-history/").json()
    assert [(h["from_level"], h["to_level"], h["changed_by"]) for h in history] == [(2, 3, "root")]


def test_patch_without_a_level_change_writes_no_history(admin_api, engineer):
    admin_api.patch(f"{PEOPLE}{engineer.pk}/", {"level": 2, "title": "Senior"}, format="json")

    assert not LevelChange.objects.exists()
    engineer.refresh_from_db()
    assert (engineer.level, engineer.title) == (2, "Senior")


def test_patch_changes_only_what_is_sent(admin_api, engineer, ladder):
    boss = PersonFactory(user__username="boss", ladder=ladder)
    Person.objects.filter(pk=engineer.pk).update(manager=boss, title="T", is_committee=True)

    response = admin_api.patch(f"{PEOPLE}{engineer.pk}/", {"name": "Erin E."}, format="json")

    engineer.refresh_from_db()
    assert response.status_code == 200
    assert (engineer.name, engineer.manager, engineer.title, engineer.is_committee) == (
        "Erin E.",
        boss,
        "T",
        True,
    )
    assert (engineer.ladder, engineer.level) == (ladder, 2)


def test_patch_email_moves_the_login_email_too(admin_api, engineer):
    admin_api.patch(f"{PEOPLE}{engineer.pk}/", {"email": "erin@new.example"}, format="json")

    engineer.refresh_from_db()
    assert engineer.email == engineer.user.email == "erin@new.example"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "BOSS@example.com"}, "email"),
        ({"level": 6}, "level"),
        ({"ladder": None}, "level"),  # a level needs a ladder
        ({"username": "other"}, "username"),
        ({"password": "a-new-password"}, "username"),
        ({"manager": 999_999}, "manager"),
    ],
    ids=[
        "email-taken-any-case",
        "level-not-in-ladder",
        "ladder-removed-under-a-level",
        "username",
        "password",
        "unknown-manager",
    ],  # fmt: skip
)
def test_patch_refusals(admin_api, engineer, ladder, body, field):
    PersonFactory(user__username="boss", ladder=ladder)
    before = _people_state()

    response = admin_api.patch(f"{PEOPLE}{engineer.pk}/", body, format="json")

    assert response.status_code == 400
    assert field in _detail(response)
    assert _people_state() == before


def test_a_manager_cycle_is_refused_and_nothing_changes(admin_api, ladder):
    a = PersonFactory(user__username="a", ladder=ladder)
    b = PersonFactory(user__username="b", ladder=ladder)
    c = PersonFactory(user__username="c", ladder=ladder)
    assert admin_api.patch(f"{PEOPLE}{a.pk}/", {"manager": b.pk}, format="json").status_code == 200
    assert admin_api.patch(f"{PEOPLE}{b.pk}/", {"manager": c.pk}, format="json").status_code == 200
    for person in (a, b, c):
        person.refresh_from_db()
    managers = (a.manager_id, b.manager_id, c.manager_id)
    assert managers == (b.pk, c.pk, None)  # a reports to b, b to c
    before = _people_state()

    closing = admin_api.patch(
        f"{PEOPLE}{c.pk}/", {"manager": a.pk, "title": "would be boss"}, format="json"
    )
    self_managed = admin_api.patch(f"{PEOPLE}{a.pk}/", {"manager": a.pk}, format="json")

    assert closing.status_code == 400
    assert "cycle" in closing.json()["error"]["message"]
    assert self_managed.status_code == 400
    assert _people_state() == before
    c.refresh_from_db()
    assert (c.manager, c.title) == (None, "")


def test_moving_a_person_within_the_chain_is_fine(admin_api, ladder):
    a = PersonFactory(user__username="a", ladder=ladder)
    b = PersonFactory(user__username="b", ladder=ladder, manager=a)
    c = PersonFactory(user__username="c", ladder=ladder, manager=b)

    assert admin_api.patch(f"{PEOPLE}{c.pk}/", {"manager": a.pk}, format="json").status_code == 200
    assert admin_api.patch(f"{PEOPLE}{b.pk}/", {"manager": None}, format="json").status_code == 200
    for person in (a, b, c):
        person.refresh_from_db()
    managers = (a.manager_id, b.manager_id, c.manager_id)
    assert managers == (None, None, a.pk)  # c reports to a, b to nobody

    assert admin_api.patch(f"{PEOPLE}{a.pk}/", {"manager": c.pk}, format="json").status_code == 400
    a.refresh_from_db()
    assert a.manager_id is None


# --- CSV import ------------------------------------------------------------------------------

HEADER = "username,email,name,title,ladder,level,manager,is_committee"


def _import(client, text: str, dry_run: bool = True, name: str = "people.csv"):
    upload = SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")
    return client.post(IMPORT, {"file": upload, "dry_run": dry_run}, format="multipart")


BAD_FILE = "\n".join([
    HEADER,                                                     # line 1
    "ann,ann@example.com,Ann,,ai-ml-engineer,2,,false",          # 2: fine
    "bob,not-an-email,Bob,,,,,",                                 # 3: bad email
    "ann,ann2@example.com,Ann Again,,,,,",                       # 4: username twice in the file
    "cat,ANN@example.com,Cat,,,,,",                              # 5: email twice in the file
    "dan,Erin@Example.com,Dan,,,,,",                             # 6: email of someone in the DB
    "ghost,ghost@example.com,Ghost,,,,,",                        # 7: a login without a person
    "eve,eve@example.com,Eve,,no-such-ladder,,,",                # 8: unknown ladder
    "fay,fay@example.com,Fay,,ai-ml-engineer,9,,",               # 9: level not in the ladder
    "gus,gus@example.com,Gus,,ai-ml-engineer,two,,",             # 10: level not a number
    "hal,hal@example.com,Hal,,,,nobody,",                        # 11: unknown manager
    "ivy,ivy@example.com,,,,,,",                                 # 12: no name
    "jon,jon@example.com,Jon,,,,,perhaps",                       # 13: bad is_committee
    "kim,kim@example.com,Kim,,,,lee,",                           # 14: kim → lee → kim
    "lee,lee@example.com,Lee,,,,kim,",                           # 15
    "max,max@example.com,Max,,,3,,",                             # 16: level without a ladder
    "zed,zed@example.com,Zed,,,,zed,",                           # 17: own manager
    ",nouser@example.com,No User,,,,,",                          # 18: no username
]) + "\n"  # fmt: skip

BAD_FILE_ERRORS = {
    (3, "email"), (4, "username"), (5, "email"), (6, "email"), (7, "username"),
    (8, "ladder"), (9, "level"), (10, "level"), (11, "manager"), (12, "name"),
    (13, "is_committee"), (14, "manager"), (15, "manager"), (16, "level"), (17, "manager"),
    (18, "username"),
}  # fmt: skip


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_bad_file_reports_every_bad_row_and_writes_nothing(admin_api, engineer, dry_run):
    UserFactory(username="ghost")
    before = _people_state()

    response = _import(admin_api, BAD_FILE, dry_run=dry_run)

    assert response.status_code == 400
    report = response.json()
    assert report["dry_run"] is dry_run
    assert report["rows"] == 17
    got = {(e["row"], e["field"]) for e in report["errors"]}
    assert got == BAD_FILE_ERRORS, sorted(got ^ BAD_FILE_ERRORS)
    assert all(e["message"] for e in report["errors"])
    assert _people_state() == before


def test_the_messages_point_at_the_other_line(admin_api, db):
    report = _import(admin_api, BAD_FILE).json()
    messages = {(e["row"], e["field"]): e["message"] for e in report["errors"]}

    assert "line 2" in messages[(4, "username")]
    assert "line 2" in messages[(5, "email")]
    assert "cycle" in messages[(14, "manager")]
    assert "nobody" in messages[(11, "manager")]


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("username,name,title", "email"),
        ("email,name", "username"),
        ("username,email,name,shoe_size", "shoe_size"),
    ],
)
def test_a_bad_header_is_reported_on_line_1(admin_api, db, header, field):
    response = _import(admin_api, header + "\nx,y,z\n")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["row"] for e in errors] == [1]
    assert field in errors[0]["field"]


def test_a_non_utf8_file_is_a_400(admin_api, db):
    upload = SimpleUploadedFile("p.csv", "username,email,name\nzoë,z@example.com,Zoë\n".encode(
        "latin-1"))  # fmt: skip

    response = admin_api.post(IMPORT, {"file": upload, "dry_run": False}, format="multipart")

    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]["message"]


GOOD_FILE = "\n".join([
    HEADER,
    "junior,junior@example.com,Junior,,ai-ml-engineer,1,mid,",   # manager later in the file
    "mid,mid@example.com,Mid,,ai-ml-engineer,3,LEAD@example.com,false",  # manager by email
    "lead,lead@example.com,Lead,Head of ML,ai-ml-engineer,5,erin,true",  # manager in the DB
    "solo,solo@example.com,Solo,,,,,",
]) + "\n"  # fmt: skip


def test_dry_run_of_a_good_file_counts_and_writes_nothing(admin_api, engineer):
    before = _people_state()

    response = _import(admin_api, GOOD_FILE, dry_run=True)

    assert response.status_code == 200
    assert response.json() == {"dry_run": True, "rows": 4, "created": 4, "updated": 0, "errors": []}
    assert _people_state() == before


def test_a_good_file_creates_logins_people_and_the_chain(admin_api, admin_user, engineer):
    response = _import(admin_api, GOOD_FILE, dry_run=False)

    assert response.status_code == 200, response.json()
    assert (response.json()["created"], response.json()["updated"]) == (4, 0)
    people = {p.user.username: p for p in Person.objects.select_related("user", "manager")}
    assert people["junior"].manager == people["mid"]
    assert people["mid"].manager == people["lead"]
    assert people["lead"].manager == engineer
    assert people["solo"].manager is None
    assert (people["lead"].title, people["lead"].level, people["lead"].is_committee) == (
        "Head of ML",
        5,
        True,
    )
    assert people["solo"].ladder is None and people["solo"].level is None
    assert all(not people[u].user.has_usable_password() for u in ("junior", "mid", "lead"))
    assert {(c.person.user.username, c.from_level, c.to_level) for c in
            LevelChange.objects.select_related("person__user")} == {
        ("junior", None, 1), ("mid", None, 3), ("lead", None, 5),
    }  # fmt: skip
    # the engineer (erin) now sees lead and everyone below
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(engineer.user)
    seen = {p["username"] for p in client.get(PEOPLE).json()["results"]}
    assert seen == {"erin", "lead", "mid", "junior"}


def test_re_import_upserts_by_username(admin_api, admin_user, engineer):
    assert _import(admin_api, GOOD_FILE, dry_run=False).status_code == 200
    ids = dict(Person.objects.values_list("user__username", "pk"))
    again = "\n".join([
        HEADER,
        "junior,junior@example.com,Junior Jr,,ai-ml-engineer,1,lead,",   # new manager
        "mid,MID@example.com,Mid,Staff,ai-ml-engineer,4,lead,false",      # promoted
        "lead,lead@example.com,Lead,Head of ML,ai-ml-engineer,5,,false",  # no manager now
        "newbie,newbie@example.com,Newbie,,,,junior,",
    ]) + "\n"  # fmt: skip

    response = _import(admin_api, again, dry_run=False)

    assert response.status_code == 200, response.json()
    assert (response.json()["created"], response.json()["updated"]) == (1, 3)
    people = {p.user.username: p for p in Person.objects.select_related("user", "manager")}
    assert {u: people[u].pk for u in ("junior", "mid", "lead", "solo")} == {
        u: ids[u] for u in ("junior", "mid", "lead", "solo")
    }
    assert people["junior"].name == "Junior Jr"
    assert people["junior"].manager == people["lead"]
    assert (people["mid"].level, people["mid"].title, people["mid"].email) == (
        4,
        "Staff",
        "MID@example.com",
    )
    assert people["mid"].user.email == "MID@example.com"
    assert people["lead"].manager is None and people["lead"].is_committee is False
    assert people["newbie"].manager == people["junior"]
    promotion = LevelChange.objects.get(person=people["mid"], from_level=3)
    assert (promotion.to_level, promotion.changed_by, promotion.reason) == (
        4,
        admin_user,
        "CSV import",
    )


def test_re_import_with_fewer_columns_leaves_the_others_alone(admin_api, engineer):
    assert _import(admin_api, GOOD_FILE, dry_run=False).status_code == 200
    before = {p.user.username: p for p in Person.objects.select_related("user")}

    response = _import(
        admin_api, "username,email,name\nmid,mid@example.com,Mid Renamed\n", dry_run=False
    )

    assert response.status_code == 200, response.json()
    mid = Person.objects.get(user__username="mid")
    assert mid.name == "Mid Renamed"
    assert (mid.ladder_id, mid.level, mid.manager_id, mid.title, mid.is_committee) == (
        before["mid"].ladder_id,
        3,
        before["lead"].pk,
        "",
        False,
    )
    lead = Person.objects.get(user__username="lead")
    assert (lead.is_committee, lead.title) == (True, "Head of ML")
    assert not LevelChange.objects.filter(to_level=None).exists()


def test_re_import_that_would_close_a_cycle_through_the_database(admin_api, engineer):
    assert _import(admin_api, GOOD_FILE, dry_run=False).status_code == 200
    before = _people_state()

    # in the DB: junior → mid → lead → erin; making lead report to junior closes a loop
    response = _import(
        admin_api,
        f"{HEADER}\nlead,lead@example.com,Lead,,ai-ml-engineer,5,junior,\n",
        dry_run=False,
    )

    assert response.status_code == 400
    assert [(e["row"], e["field"]) for e in response.json()["errors"]] == [(2, "manager")]
    assert _people_state() == before


def test_import_is_admin_only(api, engineer):
    api.force_authenticate(engineer.user)

    response = _import(api, GOOD_FILE, dry_run=True)

    assert response.status_code == 403
    assert not Person.objects.filter(user__username="junior").exists()
