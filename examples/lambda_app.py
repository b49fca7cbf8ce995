"""An app on Stepline's SDK that runs as a Lambda function beside Stepline in the same account,
called privately (docs/deploy.md). `examples/lambda_stack.py` deploys it with the runtime.

Nothing here names Stepline's URL or keys: the app construct gives the function the API's URL
and the ids of the key secrets, and the SDK reads the keys from Secrets Manager at start.
"""

from __future__ import annotations

from stepline import Client, Context, EventData, lambda_handler

client = Client("orders-app")


class OrderPlaced(EventData, name="orders/order.placed"):
    order_id: str


@client.function("fulfil-order", trigger=OrderPlaced, retries=3, concurrency=10)
def fulfil_order(ctx: Context[OrderPlaced]) -> dict:
    order_id = ctx.event.data.order_id
    reserved = ctx.step.run("reserve-stock", lambda: {"order_id": order_id, "reserved": True})
    ctx.step.sleep("cool-off", "1m")
    shipped = ctx.step.run("ship", lambda: {"order_id": order_id, "shipped": True})
    return {"reserved": reserved["reserved"], "shipped": shipped["shipped"]}


# The function's entry point: the same handler serves a function URL and a direct invoke.
handler = lambda_handler(client)
