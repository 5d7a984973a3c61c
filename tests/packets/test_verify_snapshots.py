"""`manage.py verify_snapshots` recomputes every packet snapshot hash, the item hashes inside
each snapshot and every imported evidence item's snapshot_sha256: it names each mismatch
and exits 1, or prints its summary and exits 0. (A restore check in CI calls it: the name
and the exit codes are a contract.)"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from apps.evidence.models import Evidence
from apps.packets.models import PacketSnapshot
from tests.factories import PacketFactory, canonical_sha256

from .test_source_flags import imported_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def packets(org, cycle, ladder_version):
    _items, evidence = imported_items(org, 3)
    endorsed = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                             state="endorsed", evidence=evidence, reviewer=org.manager)  # fmt: skip
    submitted = PacketFactory(person=org.peer, cycle=cycle, ladder_version=ladder_version,
                              state="submitted")  # fmt: skip
    return {"endorsed": endorsed, "submitted": submitted, "evidence": evidence}


def run() -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_snapshots", stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)
    return 0, out.getvalue(), err.getvalue()


def test_intact_hashes_exit_zero_with_a_summary(packets):
    code, out, err = run()

    assert code == 0, err
    assert "2 packet snapshots" in out
    assert "3 evidence snapshots checked: 0 mismatches" in out
    assert err == ""


def test_a_tampered_packet_snapshot_is_named_and_exits_one(packets):
    snap = PacketSnapshot.objects.get(packet=packets["endorsed"])
    data = snap.data
    data["narratives"] = {"Technical Expertise": "rewritten later"}
    PacketSnapshot.objects.filter(pk=snap.pk).update(data=data)

    code, _out, err = run()

    assert code == 1
    assert f"packet {snap.packet_id} snapshot #1 (id {snap.pk}): sha256 is {snap.sha256}" in err
    assert "1 mismatch" in err
    assert f"packet {packets['submitted'].pk}" not in err


def test_a_tampered_item_copy_is_named_even_when_the_packet_hash_was_recomputed(packets):
    snap = PacketSnapshot.objects.get(packet=packets["endorsed"])
    data = snap.data
    item = data["expectations"][0]["items"][0]
    item["work_item"]["short_description"] = "A better story"
    PacketSnapshot.objects.filter(pk=snap.pk).update(data=data, sha256=canonical_sha256(data))

    code, _out, err = run()

    assert code == 1
    assert f"evidence {item['evidence']}: item snapshot_sha256 is" in err


def test_a_tampered_evidence_row_is_named(packets):
    ev = packets["evidence"][1]
    Evidence.objects.filter(pk=ev.pk).update(snapshot={**ev.snapshot, "state": "7"})
    other = packets["evidence"][2]
    Evidence.objects.filter(pk=other.pk).update(snapshot_sha256=None)  # a hash removed

    code, _out, err = run()

    assert code == 1
    assert f"evidence {ev.pk}: snapshot_sha256 is {ev.snapshot_sha256}" in err
    assert f"evidence {other.pk}: snapshot_sha256 is None" in err
    assert "2 mismatches" in err


def test_old_snapshots_without_item_hashes_still_verify(packets):
    snap = PacketSnapshot.objects.get(packet=packets["endorsed"])
    data = snap.data
    for exp in data["expectations"]:
        for item in exp["items"]:
            del item["snapshot_sha256"]
    PacketSnapshot.objects.filter(pk=snap.pk).update(data=data, sha256=canonical_sha256(data))

    code, out, err = run()

    assert code == 0, err
    assert "older items without a hash" in out
    assert "(0 older items" not in out


@pytest.mark.django_db(transaction=True)  # manage.py closes the connections when it is done
def test_the_exit_status_a_ci_step_sees(packets, capsys):
    """Through manage.py's own entry point (what `python manage.py verify_snapshots` runs):
    the process exits 0, then 1 once a hash is wrong."""
    execute_from_command_line(["manage.py", "verify_snapshots"])  # returns: exit status 0
    assert "0 mismatches" in capsys.readouterr().out
    Evidence.objects.filter(pk=packets["evidence"][0].pk).update(snapshot_sha256="0" * 64)
    with pytest.raises(SystemExit) as tampered:
        execute_from_command_line(["manage.py", "verify_snapshots"])

    assert tampered.value.code == 1
    assert f"MISMATCH evidence {packets['evidence'][0].pk}" in capsys.readouterr().err
