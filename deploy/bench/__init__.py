"""`make bench`: youthhub under load over real WebSockets, against a bare Channels relay.

Simulated youth and staff do the whole flow (anonymous session over HTTP, hello, request,
staff accept, messages both ways with typing and read receipts, end) while idle youth stay
connected; the same load shape runs against a bare Channels relay (`deploy.bench.relay`: a
consumer that only group_sends to a per-pair group) on the same Redis, so youthhub's overhead is
a ratio. Results go to var/bench/ (JSON) and to standard output (Markdown); docs/benchmarks.md
explains the method and holds the measured numbers.

Modules: `run` (the orchestrator and the command line, `python -m deploy.bench`), `loadgen`
(the load generator processes), `relay` and `relay_settings` (the bare relay), `dbsetup`
(bench staff and pool in the cluster's database), `measure` (psutil and py-spy), `report`.
"""
