"""A SignalWire agent with a secure tool, deployed as one AWS Lambda function.

Lambda runs the function on as many instances as calls need. install(agent) gives every
instance the same signing key (from Secrets Manager) and the same session metadata
(in DynamoDB), so the token that one instance writes into a call's SWML is accepted by
whichever instance receives the tool call.
"""

from __future__ import annotations

import os
from typing import Any

from signalwire import AgentBase, FunctionResult

from session_manager.integrations.signalwire import install

# Stands in for the order system a real agent would query.
ORDERS = {"A-1001": "shipped on Monday", "A-1002": "being packed"}

if not os.environ.get("SWML_BASIC_AUTH_PASSWORD"):
    # Without it the SDK makes up a password per instance, and the next instance refuses
    # the webhook URLs (user:password@...) that this one wrote into the SWML.
    raise RuntimeError("set SWML_BASIC_AUTH_USER and SWML_BASIC_AUTH_PASSWORD")

# Built once per instance, at cold start: warm invocations reuse the agent, the cached
# signing key and the AWS clients.
agent = AgentBase(name="order-status", route="/")
agent.prompt_add_section(
    "Role", "You tell callers where their order is. Ask for the order number first."
)
sessions = install(agent)  # SESSIONS_TABLE, SIGNING_SECRET_ID... from the environment


def order_status(args: dict[str, Any], raw_data: dict[str, Any]) -> FunctionResult:
    call_id = raw_data["call_id"]  # the SDK refuses a secure call without one
    order = str(args.get("order", "")).strip().upper()
    # Per-call state, whichever instance handled the call's earlier requests.
    asked = sessions.get_session_metadata(call_id).get("orders_asked", [])
    sessions.set_session_metadata(call_id, {"orders_asked": [*asked, order]})
    status = ORDERS.get(order)
    if status is None:
        return FunctionResult(f"I can't find order {order}. Could you repeat the number?")
    return FunctionResult(f"Order {order} is {status}.")


agent.define_tool(
    name="order_status",
    description="Look up where an order is",
    parameters={"order": {"type": "string", "description": "the order number, e.g. A-1001"}},
    handler=order_status,
    secure=True,  # runs only with the token minted for this call (the SDK's default)
)


_public_url: str | None = None


def _base_url(event: dict[str, Any]) -> str | None:
    """The URL this request reached the function on, for the SWML's webhook URLs."""
    context = event.get("requestContext") or {}
    domain = context.get("domainName")
    if not domain:
        return None
    stage = context.get("stage")
    return f"https://{domain}" + (f"/{stage}" if stage and stage != "$default" else "")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _public_url
    # The SDK would otherwise point the webhooks at a Lambda function URL built from the
    # function's name. The API's own URL can't be passed in the template (the API depends
    # on the function), so it is taken from the request unless SWML_PROXY_URL_BASE is set.
    url = None if os.environ.get("SWML_PROXY_URL_BASE") else _base_url(event)
    if url and url != _public_url:
        agent.manual_set_proxy_url(url)
        _public_url = url
    return agent.handle_serverless_request(event, context, mode="lambda")
