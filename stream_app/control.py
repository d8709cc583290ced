"""Control markers on the input topic: housekeeping that must run inside a partition's stream.

Faust lets a table be written only while an event of that table's partition is
being processed. Expiring idle users therefore travels as a marker message on
the input topic: each worker sends one to every input partition it owns, every
``STREAMREC_SWEEP_INTERVAL_S``; processing it sweeps that partition. A marker
has an empty value and the header ``streamrec.control``; it is not an event:
never recommended, dead-lettered or counted as one. A replayed marker sweeps
again, which changes nothing.

An erasure request (:mod:`stream_app.erasure`) travels the same way, with the
header value ``forget``, the user id as key and the request as value; it is
processed in order with the user's events.
"""

from __future__ import annotations

CONTROL_HEADER = "streamrec.control"
SWEEP = b"sweep"
FORGET = b"forget"


def sweep_headers() -> list[tuple[str, bytes]]:
    return [(CONTROL_HEADER, SWEEP)]


def forget_headers() -> list[tuple[str, bytes]]:
    return [(CONTROL_HEADER, FORGET)]
