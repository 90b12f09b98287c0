"""The local API of `make serve` (`python -m local_api`): template.yaml's HTTP API served
on 127.0.0.1 by the real handlers, on an embedded moto or external endpoints. Never
deployed; nothing the function tests import lives here (they use devtools)."""
