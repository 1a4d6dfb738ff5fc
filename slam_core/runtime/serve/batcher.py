"""Requests gathered into batches: a batch runs when it is full or when its first request has waited
``max_wait_s``; at most ``max_pending`` requests wait, a further one is refused at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


class Overloaded(Exception):
    """More requests are waiting than the server accepts; the client should retry later."""


@dataclass
class BatchStats:
    requests: int = 0
    batches: int = 0
    largest: int = 0

    def as_dict(self) -> dict[str, Any]:
        mean = self.requests / self.batches if self.batches else 0.0
        return {
            "requests": self.requests,
            "batches": self.batches,
            "mean_batch": round(mean, 3),
            "largest": self.largest,
        }


class RequestBatcher:
    """``await batcher.submit(item)`` answers with ``run_batch(items)[i]`` for its item.

    ``run_batch`` runs in one worker thread, one batch at a time (the model is not shared between
    batches), so the event loop keeps accepting requests while a batch decodes.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Any]], Sequence[Any]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_pending: int,
    ):
        self.run_batch = run_batch
        self.max_batch_size, self.max_wait_s, self.max_pending = max_batch_size, max_wait_s, max_pending
        self.stats = BatchStats()
        self._queue: asyncio.Queue | None = None
        self._waiting = 0
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slam-serve-batch")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, item: Any) -> Any:
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        if self._waiting >= self.max_pending:
            raise Overloaded(f"{self._waiting} requests are waiting, the most this server queues")
        future = asyncio.get_running_loop().create_future()
        self._waiting += 1
        try:
            self._queue.put_nowait((item, future))
            return await future
        finally:
            self._waiting -= 1

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather(loop)
            live = [(item, future) for item, future in batch if not future.done()]  # a client may have gone
            if not live:
                continue
            try:
                answers = await loop.run_in_executor(self._executor, self.run_batch, [item for item, _ in live])
            except Exception as exc:  # the batch failed: every request in it learns why
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.stats.requests += len(live)
            self.stats.batches += 1
            self.stats.largest = max(self.stats.largest, len(live))
            for (_, future), answer in zip(live, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> list[tuple[Any, asyncio.Future]]:
        """The next batch: the first waiting request, and those that come within ``max_wait_s`` of it."""
        batch = [await self._queue.get()]
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:  # TimeoutError itself only from Python 3.11
                break
        return batch
