"""A Grid that calls the ClientApp in this process: strategies and apps tested without Ray.

Touches Flower internals (message ids, metadata), so flwr is pinned in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import uuid4

from flwr.app import Context, Error, Message, MessageType, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity


class SimulatedCrash(RuntimeError):
    pass


class InProcessGrid(Grid):
    """Each node is a ClientApp call with its own Context (node_config, persistent state)."""

    def __init__(
        self,
        client_app,
        num_nodes: int,
        run_config: dict,
        fail_nodes: Iterable[int] = (),
        crash_at_round: int = 0,
    ) -> None:
        self.client_app = client_app
        TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1  # the ServerApp's identity
        self.contexts = {
            node_id: Context(
                run_id=1,
                node_id=node_id,
                node_config={"partition-id": node_id - 1, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config=dict(run_config),
            )
            for node_id in range(1, num_nodes + 1)
        }
        self.fail_nodes = set(fail_nodes)
        self.crash_at_round = crash_at_round  # simulate the server dying when this round is sent
        self.rounds_sent = 0
        self.received: list[Message] = []  # every reply the server got, for leak tests

    def set_run(self, run_id: int) -> None:  # pragma: no cover - not used in-process
        pass

    @property
    def run(self):  # pragma: no cover
        return None

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):  # pragma: no cover
        return Message(content=content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def get_nodes(self):  # pragma: no cover
        return []

    def push_messages(self, messages):  # pragma: no cover
        raise NotImplementedError

    def pull_messages(self, message_ids):  # pragma: no cover
        raise NotImplementedError

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        messages = list(messages)
        if any(m.metadata.message_type == MessageType.TRAIN for m in messages):  # not the site query
            self.rounds_sent += 1
            if self.rounds_sent == self.crash_at_round:
                raise SimulatedCrash(f"server killed in round {self.rounds_sent}")
        replies = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = str(uuid4())
            node = msg.metadata.dst_node_id
            if node in self.fail_nodes:
                reply = Message(Error(code=0, reason="injected failure"), reply_to=msg)
            else:
                try:
                    reply = self.client_app(msg, self.contexts[node])
                except Exception as err:  # noqa: BLE001 - a failing client becomes an error reply, as in Flower
                    reply = Message(Error(code=0, reason=repr(err)), reply_to=msg)
            self.received.append(reply)
            replies.append(reply)
        return replies
