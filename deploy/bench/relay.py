"""The bare Channels relay the benchmark compares youthhub with: no database, no auth, no
validation beyond JSON. Served by Daphne (`daphne deploy.bench.relay:application`, settings
`deploy.bench.relay_settings`) on its own ports, on the same Redis as youthhub.

Protocol (JSON text frames on /ws/relay/):
- `hello {groups}` joins those groups (an idle socket joins one of its own, as a youth socket
  joins its youth group), answered by `welcome`;
- `join {pair}` / `leave {pair}` joins / leaves the pair's group (staff "accept" / "end"),
  answered by `joined` / `left`;
- any other frame with a `pair` is group_sent to `pair.<pair>` and delivered to every other
  socket in it; a `message` is also echoed to its sender at once (youthhub's acknowledgement).
"""

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.bench.relay_settings")

import django  # noqa: E402

django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class RelayConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.member_of: set[str] = set()
        await self.accept()

    async def disconnect(self, code):
        for group in self.member_of:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.member_of.clear()

    async def add(self, group: str):
        if group not in self.member_of:
            await self.channel_layer.group_add(group, self.channel_name)
            self.member_of.add(group)

    async def receive(self, text_data=None, bytes_data=None):
        frame = json.loads(text_data or "{}")
        kind = frame.get("type")
        if kind == "hello":
            for group in frame.get("groups", []):
                await self.add(group)
            await self.send(text_data='{"type": "welcome"}')
        elif kind == "join":
            await self.add(f"pair.{frame['pair']}")
            await self.send(text_data=json.dumps({"type": "joined", "pair": frame["pair"]}))
        elif kind == "leave":
            group = f"pair.{frame['pair']}"
            if group in self.member_of:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.member_of.discard(group)
            await self.send(text_data=json.dumps({"type": "left", "pair": frame["pair"]}))
        elif "pair" in frame:
            if kind == "message":
                await self.send(text_data=text_data)
            await self.channel_layer.group_send(
                f"pair.{frame['pair']}",
                {"type": "relay", "text": text_data, "sender": self.channel_name},
            )

    async def relay(self, event):
        if event["sender"] != self.channel_name:
            await self.send(text_data=event["text"])


application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/relay/", RelayConsumer.as_asgi())])}
)
