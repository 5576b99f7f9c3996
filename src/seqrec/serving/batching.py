"""Micro-batching: concurrent requests share one forward pass.

Requests wait in an asyncio queue. One task takes the first waiting request, then gathers more
for up to ``max_wait_ms`` or until ``max_batch`` are there, and runs them as one
``Recommender.run`` call in a worker thread (torch releases the GIL, so the event loop keeps
reading requests meanwhile). With ``max_wait_ms = 0`` it takes only what is already waiting:
no request waits for company, and requests that arrived during a forward pass share the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Q = TypeVar("Q")
R = TypeVar("R")


class MicroBatcher(Generic[Q, R]):
    """Runs ``run(queries) -> results`` (same order) over batches of concurrent submissions."""

    def __init__(
        self, run: Callable[[Sequence[Q]], list[R]], max_batch: int, max_wait_ms: float
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_ms >= 0")
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000.0
        self.queue: asyncio.Queue[tuple[Q, asyncio.Future[R]]] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqrec-forward")
        self.task: asyncio.Task | None = None
        self.batches = 0  # forward passes so far, and the requests they served
        self.served = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=True)

    async def submit(self, queries: Sequence[Q]) -> list[R]:
        """Results of ``queries``, each batched with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in queries]
        for query, future in zip(queries, futures, strict=True):
            self.queue.put_nowait((query, future))
        return list(await asyncio.gather(*futures))

    async def _gather(self) -> list[tuple[Q, asyncio.Future[R]]]:
        batch = [await self.queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            live = [(q, f) for q, f in batch if not f.done()]  # a cancelled client is skipped
            if not live:
                continue
            try:
                results = await loop.run_in_executor(self.executor, self.run, [q for q, _ in live])
            except Exception as error:  # the callers get the error, the loop goes on
                for _, future in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            self.served += len(live)
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)
