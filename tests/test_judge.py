"""The factuality judge against a real chat-completions HTTP server on 127.0.0.1 (no network)."""

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mllmu_tasks import judge as judge_mod
from mllmu_tasks.judge import (FactualityJudge, JudgeError, JudgeReplyError, JudgeUnavailableError,
                               cache_key, judge_samples, main, parse_score)

KEY_ENV = "MLLMU_TEST_JUDGE_KEY"


def rubric_score(body: dict) -> int:
    """The fake judge: 10 when the answer contains the ground truth (case-insensitive), else 2."""
    user = body["messages"][-1]["content"]
    truth = re.search(r"^Ground truth: (.*)$", user, re.M).group(1)
    answer = re.search(r"^Model's answer: (.*)$", user, re.M).group(1)
    return 10 if truth.lower() in answer.lower() else 2


class FakeServer:
    """A ThreadingHTTPServer speaking the chat-completions protocol.

    ``script`` holds responses served before the default ones, in order: ``(status, body_text,
    headers)`` or ``("sleep", seconds)`` (stall past the client's timeout, then answer normally).
    """

    def __init__(self):
        self.requests = []
        self.script = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers),
                                            "body": json.loads(raw)})
                    step = server.script.pop(0) if server.script else None
                if step is not None and step[0] == "sleep":
                    time.sleep(step[1])
                    step = None
                if step is None:
                    content = f"Score: {rubric_score(server.requests[-1]['body'])}"
                    step = (200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}),
                            {})
                status, text, headers = step
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def reply(self, content: str):
        """Script one 200 chat completion whose assistant text is ``content``."""
        self.script.append((200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}),
                            {}))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture
def delays(monkeypatch):
    """Backoff waits the judge asked for (seconds); no real sleeping."""
    recorded = []
    monkeypatch.setattr(judge_mod, "_sleep", recorded.append)
    return recorded


def make_judge(server, **kwargs):
    kwargs.setdefault("backoff_s", 0.01)
    kwargs.setdefault("api_key_env", KEY_ENV)
    return FactualityJudge(server.base_url, "judge-model", **kwargs)


# ---------------------------------------------------------------- scores and request

def test_scores_of_pairs(server):
    judge = make_judge(server)
    assert judge.score("Where was Ana born?", "Lyon", "She was born in LYON, France.") == 10
    assert judge.score("Where was Ana born?", "Lyon", "She was born in Paris.") == 2
    assert judge.score_many([("Job?", "nurse", "She is a nurse."), ("Job?", "pilot", "A chef."),
                             ("Age?", "42", "")]) == [10, 2, 2]
    assert len(server.requests) == 5


def test_request_body_has_model_temperature_and_rubric(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    make_judge(server).score("What is her job?", "She is a pilot.", "A pilot.")
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert body["model"] == "judge-model"
    assert body["temperature"] == 0
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user"]
    user = body["messages"][1]["content"]
    assert "integer scale from 1 to 10" in user and "10 = fully correct and complete" in user
    assert "1 = wrong" in user and "Score: N" in user
    assert "Question: What is her job?" in user
    assert "Ground truth: She is a pilot." in user and "Model's answer: A pilot." in user
    assert request["headers"]["Content-Type"] == "application/json"


def test_authorization_header_only_when_env_set(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-secret")
    judge = make_judge(server)
    judge.score("q", "a", "a")
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer sk-test-secret"
    assert "sk-test-secret" not in repr(judge)
    monkeypatch.delenv(KEY_ENV)
    judge.score("q", "a", "b")
    assert "Authorization" not in server.requests[-1]["headers"]
    monkeypatch.setenv(KEY_ENV, "")
    judge.score("q", "a", "c")
    assert "Authorization" not in server.requests[-1]["headers"]


def test_url_forms():
    assert judge_mod.chat_completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert judge_mod.chat_completions_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"
    with pytest.raises(ValueError, match="http"):
        FactualityJudge("localhost:8000/v1", "m")


# ---------------------------------------------------------------- cache

def test_cache_hit_makes_no_request_and_survives_new_instance(server, tmp_path):
    cache = tmp_path / "cache"
    judge = make_judge(server, cache_dir=cache)
    assert judge.score("Where?", "Lyon", "In Lyon.") == 10
    assert judge.score("Where?", "Lyon", "In Lyon.") == 10
    assert len(server.requests) == 1
    again = make_judge(server, cache_dir=cache)
    assert again.score("Where?", "Lyon", "In Lyon.") == 10
    assert again.score_many([("Where?", "Lyon", "In Lyon.")] * 3) == [10, 10, 10]
    assert len(server.requests) == 1
    assert again.score("Where?", "Lyon", "In Nice.") == 2  # another answer: a new request
    assert len(server.requests) == 2
    other_model = FactualityJudge(server.base_url, "other-judge", cache_dir=cache, api_key_env=KEY_ENV)
    other_model.score("Where?", "Lyon", "In Lyon.")
    assert len(server.requests) == 3
    assert list(cache.iterdir()) == [cache / judge_mod.CACHE_FILE]


def test_cache_key_separates_fields():
    assert cache_key("m", "ab", "c", "d") != cache_key("m", "a", "bc", "d")
    assert cache_key("m", "q", "t", "a") == cache_key("m", "q", "t", "a")
    assert re.fullmatch(r"[0-9a-f]{64}", cache_key("m", "q", "t", "a"))


def test_failed_reply_is_not_cached(server, tmp_path):
    judge = make_judge(server, cache_dir=tmp_path)
    server.reply("no idea")
    with pytest.raises(JudgeReplyError):
        judge.score("q", "t", "t")
    assert judge.score("q", "t", "t") == 10
    assert len(server.requests) == 2


# ---------------------------------------------------------------- retries and errors

def test_retry_after_500_then_success(server, delays, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, "sk-never-logged")
    server.script.append((500, '{"error": "boom"}', {}))
    assert make_judge(server).score("q", "truth", "the truth") == 10
    assert len(server.requests) == 2
    assert delays == [0.01]
    assert "retry 1/4" in caplog.text and "HTTP 500" in caplog.text
    assert "sk-never-logged" not in caplog.text


def test_retry_after_429_then_success_with_exponential_backoff_and_retry_after(server, delays):
    server.script += [(429, '{"error": "rate limited"}', {}), (503, "busy", {}),
                      (429, "slow down", {"Retry-After": "3"})]
    assert make_judge(server).score("q", "truth", "no") == 2
    assert len(server.requests) == 4
    assert delays == [0.01, 0.02, 3.0]


def test_persistent_503_gives_judge_error_after_retries(server, delays):
    server.script += [(503, "model loading", {})] * 3
    with pytest.raises(JudgeError, match=r"HTTP 503 after 3 attempts.*model loading") as info:
        make_judge(server, max_retries=2).score("q", "t", "a")
    assert not isinstance(info.value, JudgeUnavailableError)
    assert len(server.requests) == 3


def test_400_raises_without_retry(server, delays):
    server.script.append((400, '{"error": {"message": "unknown model judge-model"}}', {}))
    with pytest.raises(JudgeError, match=r"HTTP 400.*unknown model judge-model") as info:
        make_judge(server).score("q", "t", "a")
    assert type(info.value) is JudgeError
    assert len(server.requests) == 1 and delays == []


def test_timeout_is_retried(server, delays):
    server.script.append(("sleep", 0.6))
    assert make_judge(server, timeout_s=0.15).score("q", "t", "t") == 10
    assert len(server.requests) == 2 and delays == [0.01]


def test_unreachable_endpoint(delays):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    judge = FactualityJudge(url, "my-judge", max_retries=2, backoff_s=0.01, timeout_s=2)
    start = time.monotonic()
    with pytest.raises(JudgeUnavailableError) as info:
        judge.score("q", "t", "a")
    assert time.monotonic() - start < 3
    message = str(info.value)
    assert f"{url}/chat/completions" in message and "after 3 attempts" in message
    assert "vllm serve my-judge" in message and "--judge_url" in message
    assert delays == [0.01, 0.02]


def test_unreachable_endpoint_real_backoff_is_quick():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(JudgeUnavailableError, match=str(port)):
        FactualityJudge(f"http://127.0.0.1:{port}", "m", max_retries=3, backoff_s=0.01).score("q", "t", "a")
    assert time.monotonic() - start < 2


# ---------------------------------------------------------------- malformed replies

def test_reply_without_score(server):
    server.reply("The answer seems plausible but I cannot tell." + " blah" * 100)
    with pytest.raises(JudgeReplyError) as info:
        make_judge(server).score("Where was Ana born?", "Lyon", "Paris")
    message = str(info.value)
    assert "no score in 1..10" in message and "Where was Ana born?" in message
    assert "The answer seems plausible" in message and "more chars]" in message
    assert len(message) < 600


@pytest.mark.parametrize("content", ["Score: 11", "Score: 0", "7.5", "between 3 and 8"])
def test_reply_with_out_of_range_or_ambiguous_score(server, content):
    server.reply(content)
    with pytest.raises(JudgeReplyError, match=re.escape(content)):
        make_judge(server).score("q", "t", "a")


def test_non_json_body(server):
    server.script.append((200, "<html>gateway says hi</html>", {}))
    with pytest.raises(JudgeReplyError, match=r"not a chat completion.*gateway says hi"):
        make_judge(server).score("q", "t", "a")
    server.script.append((200, '{"object": "error"}', {}))
    with pytest.raises(JudgeError, match="choices"):
        make_judge(server).score("q", "t", "a")
    assert len(server.requests) == 2


def test_content_as_list_of_parts(server):
    server.script.append((200, json.dumps({"choices": [{"message": {"role": "assistant", "content": [
        {"type": "text", "text": "Score: "}, {"type": "text", "text": "6"}]}}]}), {}))
    assert make_judge(server).score("q", "t", "a") == 6


@pytest.mark.parametrize("reply, expected", [
    ("Score: 7", 7), ("score:7", 7), ("**Score:** 9", 9), ("Score: 10/10", 10), ("The score is 4.", 4),
    ("Rating = 3", 3), ("7/10", 7), ("8 / 10", 8), ("6 out of 10", 6), ("7", 7), (" **5** ", 5),
    ("I would rate it 1.", 1), ("10", 10), ("Score: 7\nThe answer matches.", 7),
    ("", None), ("no score", None), ("Score: 0", None), ("11", None), ("7.5", None), ("3 or 4", None),
    ("100", None),
])
def test_parse_score(reply, expected):
    assert parse_score(reply) == expected


# ---------------------------------------------------------------- samples files and CLI

def write_samples(path, rows):
    with open(path, "w", encoding="utf-8") as handle:
        for question, truth, answer, kind in rows:
            handle.write(json.dumps({"doc_id": 0, "doc": {"question": question, "answer": truth, "kind": kind},
                                     "target": truth, "resps": [[answer]], "filtered_resps": [answer]}) + "\n")


def test_judge_samples_mean(server, tmp_path):
    path = tmp_path / "samples_mllmu_forget_gen_img.jsonl"
    write_samples(path, [("Where?", "Lyon", "She lives in Lyon.", "gen"), ("Job?", "nurse", "A pilot.", "gen"),
                         ("Pet?", "a cat", "She has a cat.", "gen")])
    result = judge_samples(path, make_judge(server))
    assert result == {"factuality": pytest.approx(22 / 3), "n": 3, "scores": [10, 2, 10]}


def test_judge_samples_concurrent_keeps_order(server, tmp_path):
    path = tmp_path / "samples.jsonl"
    rows = [(f"q{i}", f"fact{i}", f"fact{i}" if i % 2 else "wrong", "gen") for i in range(8)]
    write_samples(path, rows)
    result = judge_samples(path, make_judge(server), concurrency=4)
    assert result["scores"] == [2, 10] * 4 and result["factuality"] == 6.0
    assert len(server.requests) == 8


def test_judge_samples_rejects_bad_files(server, tmp_path):
    judge = make_judge(server)
    cls = tmp_path / "cls.jsonl"
    write_samples(cls, [("Q?", "B", "B", "cls")])
    with pytest.raises(ValueError, match=r"cls.jsonl:1: doc.kind is 'cls'"):
        judge_samples(cls, judge)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"doc": {"question": "q", "answer": "a", "kind": "gen"}, "filtered_resps": ["a"]}\n\n{oops\n')
    with pytest.raises(ValueError, match=r"broken.jsonl:3: not a JSON line"):
        judge_samples(broken, judge)
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"doc": {"question": "q", "kind": "gen"}, "filtered_resps": ["a"]}\n')
    with pytest.raises(ValueError, match=r"missing.jsonl:1: expected doc.question"):
        judge_samples(missing, judge)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no samples"):
        judge_samples(empty, judge)
    assert server.requests == []


def test_cli_prints_one_line_per_file(server, tmp_path, capsys):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_samples(first, [("Where?", "Lyon", "Lyon.", "gen"), ("Job?", "nurse", "pilot", "gen")])
    write_samples(second, [("Pet?", "cat", "A cat.", "gen")])
    code = main(["--url", server.base_url, "--model", "judge-model", "--cache", str(tmp_path / "c"),
                 str(first), str(second)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out == [f"{first}\tfactuality=6.00\tn=2", f"{second}\tfactuality=10.00\tn=1"]


def test_cli_reports_judge_error(server, tmp_path, capsys):
    path = tmp_path / "a.jsonl"
    write_samples(path, [("Where?", "Lyon", "Lyon.", "gen")])
    server.script.append((401, '{"error": "invalid api key"}', {}))
    assert main(["--judge_url", server.base_url, "--model", "m", str(path)]) == 1
    assert "HTTP 401" in capsys.readouterr().err
