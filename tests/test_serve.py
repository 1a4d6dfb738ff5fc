"""`slam serve`: the OpenAI client transcribes through it, requests batch, bad requests get 4xx, bounds hold."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openai
import pytest
import soundfile
import uvicorn
import yaml

from slam_core.runtime.cli import main
from slam_core.runtime.serve.app import ServeSettings, create_app
from slam_core.runtime.serve.batcher import Overloaded, RequestBatcher
from slam_core.runtime.serve.transcriber import Transcriber

SPEC = {
    "name": "tiny-asr",
    "encoder": {
        "type": "toy-encoder",
        "shape": {"num_mel_bins": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2},
    },
    "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 16},
    "llm": {"type": "toy-llm", "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 32}},
    "peft": {"type": "lora", "r": 2, "alpha": 4, "dropout": 0.0},
    "task": {"type": "asr"},
    "data": {"train_manifest": "clips.jsonl", "test_manifest": "clips.jsonl", "num_workers": 0, "max_duration_s": 2.0},
    "train": {"max_steps": 3, "lr": 0.01, "warmup_steps": 0, "dtype": "fp32"},
    "infer": {"batch_size": 1, "max_new_tokens": 5},
}
KEYS = [f"u{index}" for index in range(6)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained tiny run, its clips, and what `slam infer` writes for them (one clip per batch)."""
    folder = tmp_path_factory.mktemp("served")
    rows = []
    for index, key in enumerate(KEYS):
        audio = 0.1 * np.random.default_rng(index).standard_normal(4000 + 1500 * index).astype("float32")
        soundfile.write(folder / f"{key}.wav", audio, 16000)
        rows.append({"key": key, "source": str(folder / f"{key}.wav"), "target": f"word {key}"})
    (folder / "clips.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "spec.yaml").write_text(yaml.safe_dump(SPEC | {"data": SPEC["data"] | {
        "train_manifest": str(folder / "clips.jsonl"), "test_manifest": str(folder / "clips.jsonl")}}))  # fmt: skip
    assert main(["train", str(folder / "spec.yaml"), "--run-dir", str(folder / "run")]) == 0
    hyps = folder / "hyps.jsonl"
    assert main(["infer", str(folder / "spec.yaml"), "--checkpoint", str(folder / "run"), "--output", str(hyps)]) == 0
    expected = {r["key"]: r["hypothesis"] for r in map(json.loads, hyps.read_text().splitlines())}
    return folder, expected


class Server:
    """``create_app`` served by uvicorn on a free local port, in a thread."""

    def __init__(self, transcriber: Transcriber, **bounds):
        self.settings = ServeSettings(model_name="tiny-asr", **bounds)
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(create_app(transcriber, self.settings), log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            assert self.thread.is_alive(), "the server did not start"
            threading.Event().wait(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def transcriber(trained):
    folder, _ = trained
    return Transcriber.load(folder / "run", device="cpu")


def transcribe(client: openai.OpenAI, path, **options):
    with open(path, "rb") as handle:
        return client.audio.transcriptions.create(model="tiny-asr", file=handle, **options)


def test_the_openai_client_gets_what_slam_infer_writes(trained, transcriber):
    folder, expected = trained
    assert transcriber.checkpoint.name.startswith("step-")
    with Server(transcriber) as server:
        client = server.client()
        for key in KEYS[:3]:
            assert transcribe(client, folder / f"{key}.wav").text == expected[key]
        assert transcribe(client, folder / "u0.wav", response_format="text").strip() == expected["u0"]
        verbose = transcribe(client, folder / "u1.wav", response_format="verbose_json", language="en")
        assert verbose.text == expected["u1"] and verbose.language == "en"
        assert verbose.duration == pytest.approx(soundfile.info(folder / "u1.wav").duration)
        assert [m.id for m in client.models.list()] == ["tiny-asr"]


def test_concurrent_requests_are_batched_and_all_answered_right(trained, transcriber):
    folder, expected = trained
    with Server(transcriber, max_batch_size=4, max_wait_ms=300) as server:
        client = server.client()
        jobs = [KEYS[i % len(KEYS)] for i in range(12)]
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda key: transcribe(client, folder / f"{key}.wav").text, jobs))
        assert answers == [expected[key] for key in jobs]
        with urllib.request.urlopen(f"{server.url}/health") as response:
            health = json.load(response)
    assert health["status"] == "ok" and health["requests"] == 12
    assert health["batches"] < 12 and health["largest"] <= 4  # batched, within the bound


def test_bad_requests_get_a_4xx_naming_the_problem(trained, transcriber):
    folder, _ = trained
    long_clip = folder / "long.wav"
    soundfile.write(long_clip, np.zeros(16000 * 3, dtype="float32"), 16000)
    (folder / "noise.wav").write_bytes(b"RIFF not really a wave file")
    with Server(transcriber, max_upload_bytes=200_000) as server:
        client = server.client()
        with pytest.raises(openai.BadRequestError, match=r"noise\.wav: cannot read the audio"):
            transcribe(client, folder / "noise.wav")
        with pytest.raises(openai.BadRequestError, match=r"3\.0 s of audio, longer than the 2 s this model takes"):
            transcribe(client, long_clip)
        with pytest.raises(openai.BadRequestError, match=r"response_format 'srt' is not served"):
            transcribe(client, folder / "u0.wav", response_format="srt")
        with pytest.raises(openai.BadRequestError, match=r"temperature 0\.7 is not served"):
            transcribe(client, folder / "u0.wav", temperature=0.7)
        big = io.BytesIO()
        soundfile.write(big, np.zeros(16000 * 8, dtype="float32"), 16000, format="WAV", subtype="FLOAT")
        big.name = "big.wav"
        with pytest.raises(openai.APIStatusError, match=r"over this server's 0\.19\d* MiB") as caught:
            client.audio.transcriptions.create(model="tiny-asr", file=big)
        assert caught.value.status_code == 413


def test_the_batcher_bounds_batches_and_waiting_requests():
    release = threading.Event()
    seen: list[list[int]] = []

    def run_batch(items):
        release.wait(5)
        seen.append(items)
        return [item * 10 for item in items]

    async def scenario():
        batcher = RequestBatcher(run_batch, max_batch_size=2, max_wait_s=0.05, max_pending=3)
        await batcher.start()
        first = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
        await asyncio.sleep(0.2)  # the first batch (0, 1) is decoding, 2 waits
        with pytest.raises(Overloaded, match="3 requests are waiting"):
            await batcher.submit(99)
        release.set()
        answers = await asyncio.gather(*first)
        await batcher.stop()
        return answers

    assert asyncio.run(scenario()) == [0, 10, 20]
    assert seen == [[0, 1], [2]]


def test_slam_serve_bad_input_is_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err == f"slam: error: {tmp_path / 'nothing'}: no such run, checkpoint or export folder\n"
    (tmp_path / "run").mkdir()
    assert main(["serve", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no spec.json in it or in its run folder; name the spec" in error
