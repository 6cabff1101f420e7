"""The reference webhook bridges: Telegram and Slack requests in, verified, one inbound
record each out on ``awooop.channel.inbound.v1``, acknowledged only after the broker did.

Build the app with :func:`awooop.ingress.bridges.app.create_bridge_app`; run a bridge
process with :func:`awooop.ingress.bridges.serve.serve_bridge` (``awooop bridge``).
"""
