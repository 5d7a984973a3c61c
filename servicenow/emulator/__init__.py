"""A local ServiceNow instance emulator for the demo, tests and benchmarks.

Serves a JSON dataset over HTTP(S) on loopback with ServiceNow's wire format (Basic and
OAuth auth, encoded queries and name-value filters, pagination headers, reference, choice
and date display values, Table API writes, the Batch and Aggregate APIs, record pages) and
switchable faults.
Standard library only: nothing here imports Django, so it runs anywhere Python does.

    from servicenow.emulator import Emulator, Faults
    with Emulator(dataset) as emu:
        requests.get(f"{emu.url}/api/now/table/incident", auth=("integration", "..."))
"""

from .faults import Faults
from .server import Emulator
from .store import Store

__all__ = ["Emulator", "Faults", "Store"]
