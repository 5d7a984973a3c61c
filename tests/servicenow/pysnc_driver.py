"""Drive ServiceNow's own Python client (PySNC) against the emulator; print what it saw.

Runs under the PySNC venv's interpreter (see test_pysnc.py), never the project's: it
imports nothing from ladder_tracker and takes its inputs as one JSON argument
(url, ca, user, password, client_id, client_secret, get_sys_id, in_ids, insert). It prints
one JSON object; test_pysnc.py compares it with the emulator's own data.
"""

import json
import sys

import pysnc
import requests


def numbers(gr) -> list:
    return [record.get_value("number") for record in gr]


def main() -> None:
    args = json.loads(sys.argv[1])
    client = pysnc.ServiceNowClient(
        args["url"], (args["user"], args["password"]), verify=args["ca"]
    )
    out: dict = {"version": pysnc.__version__}

    # Encoded query, ordered.
    gr = client.GlideRecord("incident")
    gr.add_encoded_query("state=2^priority<=2")
    gr.order_by("number")
    gr.query()
    out["encoded"] = numbers(gr)
    out["encoded_count"] = gr.get_row_count()

    # The same filter as PySNC's own conditions.
    gr = client.GlideRecord("incident")
    gr.add_query("state", "2")
    gr.add_query("priority", "<=", "2")
    gr.order_by("number")
    gr.query()
    out["plain"] = numbers(gr)

    # Descending order, first five only.
    gr = client.GlideRecord("incident")
    gr.order_by_desc("number")
    gr.limit = 5
    gr.query()
    out["desc_first5"] = numbers(gr)[:5]

    # Iteration across many small requests (offset paging).
    gr = client.GlideRecord("incident", batch_size=7)
    gr.add_query("state", "6")
    gr.fields = "number,state"
    gr.query()
    out["batched"] = numbers(gr)
    out["batched_count"] = gr.get_row_count()

    # Get by sys_id, and a miss.
    gr = client.GlideRecord("incident")
    out["get_found"] = gr.get(args["get_sys_id"])
    record = {
        "number": gr.get_value("number"),
        "state": [gr.get_value("state"), gr.get_display_value("state")],
        "priority": [gr.get_value("priority"), gr.get_display_value("priority")],
        "opened_at": [gr.get_value("opened_at"), gr.get_display_value("opened_at")],
        "assigned_to": [gr.get_value("assigned_to"), gr.get_display_value("assigned_to")],
    }
    out["get"] = record
    out["get_link"] = gr.get_link(no_stack=True)
    page = requests.get(out["get_link"], verify=args["ca"], timeout=30)
    out["record_page"] = [page.status_code, page.headers.get("Content-Type", ""), page.text]
    out["get_missing"] = client.GlideRecord("incident").get("0" * 32)

    # Display values only, with reference links (their URLs come from the request's host).
    gr = client.GlideRecord("incident")
    gr.display_value = True
    gr.exclude_reference_link = False
    gr.add_query("sys_id", args["get_sys_id"])
    gr.fields = "number,state,assigned_to"
    gr.query()
    gr.next()
    out["display_true"] = {
        "state": gr.get_display_value("state"),
        "assigned_to": gr.get_display_value("assigned_to"),
        "assigned_to_link": gr.get_element("assigned_to").get_link(),
    }

    # Dot-walking through a reference.
    gr = client.GlideRecord("incident")
    gr.add_query("sys_id", args["get_sys_id"])
    gr.fields = "number,assigned_to.email,assigned_to.name"
    gr.query()
    gr.next()
    out["dotwalk"] = {
        "assigned_to.email": gr.get_value("assigned_to.email"),
        "assigned_to.name": gr.get_value("assigned_to.name"),
    }

    # A 400-id IN query: long enough that PySNC sends it through the Batch API.
    gr = client.GlideRecord("incident", batch_size=100)
    gr.add_query("sys_id", "IN", ",".join(args["in_ids"]))
    gr.fields = "sys_id"
    gr.query()
    out["in_count"] = gr.get_row_count()
    out["in_ids"] = [record.get_value("sys_id") for record in gr]

    # Writes: insert, update, delete.
    gr = client.GlideRecord("incident")
    gr.initialize()
    for field, value in args["insert"].items():
        gr.set_value(field, value)
    new_id = gr.insert()
    out["insert_id"] = str(new_id) if new_id else None
    gr = client.GlideRecord("incident")
    gr.get(out["insert_id"])
    gr.set_value("state", "6")
    out["update_id"] = str(gr.update())
    gr = client.GlideRecord("incident")
    gr.get(out["insert_id"])
    out["after_update"] = [gr.get_value("state"), gr.get_value("sys_mod_count")]
    out["deleted"] = gr.delete()
    out["get_deleted"] = client.GlideRecord("incident").get(out["insert_id"])

    # Bulk writes, which PySNC sends as one Batch API call each.
    for _ in range(3):
        gr = client.GlideRecord("incident")
        gr.initialize()
        gr.set_value("short_description", "Bulk by PySNC")
        gr.insert()
    gr = client.GlideRecord("incident")
    gr.add_query("short_description", "Bulk by PySNC")
    gr.query()
    for record in gr:
        record.set_value("state", "7")
    out["update_multiple"] = gr.update_multiple()
    gr = client.GlideRecord("incident")
    gr.add_query("short_description", "Bulk by PySNC")
    gr.query()
    out["bulk_states"] = [record.get_value("state") for record in gr]
    out["delete_multiple"] = gr.delete_multiple()

    # OAuth password grant, twice: the instance hands back the live token.
    tokens = []
    for _ in range(2):
        flow = pysnc.ServiceNowPasswordGrantFlow(
            args["user"], args["password"], args["client_id"], args["client_secret"]
        )
        oauth_client = pysnc.ServiceNowClient(args["url"], flow, verify=args["ca"])
        tokens.append(oauth_client.session.token["access_token"])
        gr = oauth_client.GlideRecord("incident")
        out["oauth_get"] = gr.get(args["get_sys_id"])
    out["oauth_same_token"] = tokens[0] == tokens[1]

    print(json.dumps(out))


if __name__ == "__main__":
    main()
