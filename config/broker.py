"""The embedded default's broker: kombu's filesystem transport, with each message written
whole before any consumer can see it.

kombu's own `_put` creates the message file under its final name and then writes it, and its
`_get` takes the first file with the queue's name (moving it away, with no lock): a consumer
that lists the folder between the two reads an empty file, and the worker dies of the
JSONDecodeError. This happened to `make run`'s worker under three annotators and a stream of
predictions. Here a message is written under a name no consumer reads (a leading dot) and
renamed into place, which is atomic on one file system; a consumer claims a message by renaming
it into the processed folder beside the queue (one rename succeeds, so two consumers never
take the same message) rather than by moving it to the system's temporary folder, which may
be another file system and turn the move into a copy.

An exchange's table of queues is created the same way: whole, then linked into place.

Settings name `Transport` as CELERY_BROKER_TRANSPORT when the broker URL is `filesystem://`.
"""

import contextlib
import os
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")  # not "<stamp>.<queue>.msg"
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        claimed_folder = self.processed_folder
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(claimed_folder, name)
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except OSError:
                continue  # another consumer took it
            try:
                with open(claimed, "rb") as file:
                    payload = file.read()
                if not self.store_processed:
                    os.remove(claimed)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {claimed!r} from queue.") from exc
            return loads(bytes_to_str(payload))
        raise Empty()

    def _queue_bind(self, exchange, routing_key, pattern, queue) -> None:
        # kombu creates an exchange's table by opening it "wb" and only then locking and
        # writing it: a producer reading the table between the two finds it empty (the same
        # JSONDecodeError), and a second binder's "wb" empties the first's. Here the first table
        # is written aside and linked into place (the link fails if another binder was first);
        # a table that exists is updated by kombu's own locked read-modify-write.
        table = self._exchange_file(exchange)
        if not table.exists():
            self.control_folder.mkdir(exist_ok=True)
            first = [filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")]
            partial = table.with_name(f".{table.name}.{uuid.uuid4()}.part")
            try:
                with open(partial, "wb") as file:
                    file.write(str_to_bytes(dumps(first)))
                os.link(partial, table)
                return
            except OSError:
                # another binder created it (FileExistsError): this queue is added to theirs
                # below; or this file system has no hard links: kombu's own way, as before
                pass
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
        super()._queue_bind(exchange, routing_key, pattern, queue)


class Transport(filesystem.Transport):
    Channel = Channel
