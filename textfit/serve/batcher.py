"""Micro-batching: requests that arrive within a few milliseconds of each other share one model call.

One model call at a time runs in a worker thread (the model's own threads use the cores); while it runs, new
requests queue up and become the next batch. A batch closes when it holds `max_texts` texts or when the first
request in it has waited `window` seconds, so a lone request pays at most the window in latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

Predictions = list[dict[str, Any]]
POLL = 0.001  # seconds between looks at the queue while a batch is open


class MicroBatcher:
    def __init__(self, predict: Callable[[list[str]], Predictions], *, max_texts: int = 64, window: float = 0.005):
        self.predict = predict
        self.max_texts = max_texts
        self.window = window
        self.batches = 0  # model calls so far
        self.requests = 0  # requests answered so far
        self._queue: asyncio.Queue[tuple[list[str], asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textfit-model")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, texts: list[str]) -> Predictions:
        assert self._queue is not None, "start() the batcher first"
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((texts, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0])
            deadline = loop.time() + self.window
            while size < self.max_texts:
                if self._queue.empty():  # polled, not wait_for(get()): that can drop an item on timeout in 3.11
                    if loop.time() >= deadline:
                        break
                    await asyncio.sleep(min(POLL, deadline - loop.time()))
                    continue
                item = self._queue.get_nowait()
                batch.append(item)
                size += len(item[0])
            texts = [text for request, _ in batch for text in request]
            try:
                predictions = await loop.run_in_executor(self._executor, self.predict, texts)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            start = 0
            for request, future in batch:
                if not future.done():  # a client that went away leaves a cancelled future
                    future.set_result(predictions[start:start + len(request)])
                start += len(request)
            self.requests += len(batch)
