"""Client side of central DP with client-side clipping: Flower's own clipping mods, when configured.

``DifferentialPrivacyClientSide{Fixed,Adaptive}Clipping`` on the server expect the ClientApp to
clip its update with ``fixedclipping_mod`` / ``adaptiveclipping_mod``. The ClientApp always carries
this mod; it reads ``[privacy]`` from the run's config and calls Flower's mod only for a
client-side clipping mode (and only on training messages), otherwise it passes the message on.
"""

from __future__ import annotations

from flwr.app import Context, Message
from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import MessageType

from fedrai.clients.worker import config_from_run_config


def privacy_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    if msg.metadata.message_type != MessageType.TRAIN:
        return call_next(msg, context)
    clipping = config_from_run_config(context.run_config).privacy.clipping
    if clipping == "client_fixed":
        return fixedclipping_mod(msg, context, call_next)
    if clipping == "client_adaptive":
        return adaptiveclipping_mod(msg, context, call_next)
    return call_next(msg, context)
