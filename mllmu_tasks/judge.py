"""Optional LLM-judge factuality score of MLLMU-Bench generation answers.

MLLMU-Bench (Liu et al., NAACL 2025, arXiv:2410.22108) reports, beside
ROUGE and BLEU, a *factuality score* of each generation answer: an LLM
judge compares the model's answer with the ground truth of the question and
rates it on an integer scale from 1 (wrong or unrelated) to 10 (fully
correct and complete). This module is that judge for any OpenAI-compatible
chat-completions endpoint: a hosted API or a local server such as
``vllm serve <model>``. It is optional: the lm-eval tasks never call it.
The rubric below is this project's wording of the paper's 1-10 factuality
rubric (:data:`RUBRIC_VERSION` names it; changing the wording must change
the version, which invalidates cached scores).

Usage::

    judge = FactualityJudge("http://localhost:8000/v1", "Qwen/Qwen2.5-7B-Instruct",
                            cache_dir="runs/judge-cache")
    judge.score("Where was she born?", "She was born in Lyon.", "In Lyon, France.")   # -> 1..10
    judge_samples("results/.../samples_mllmu_forget_gen_img_*.jsonl", judge)
    # -> {"factuality": 7.4, "n": 40, "scores": [...]}

Command line (one line per samples file; exit code 1 on a judge error)::

    python -m mllmu_tasks.judge --url http://localhost:8000/v1 --model NAME \\
        [--cache DIR] samples_mllmu_forget_gen_img_*.jsonl ...

Errors: :class:`JudgeError` (HTTP error that is not retried, bad response
body), its subclasses :class:`JudgeUnavailableError` (endpoint unreachable
after the retries) and :class:`JudgeReplyError` (a reply with no usable
score). The API key is read from an environment variable at each request
and never logged or stored.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import logging
import math
import os
import re
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Iterable, Sequence

log = logging.getLogger(__name__)

#: Names the rubric wording below; part of every cache key.
RUBRIC_VERSION = "mllmu-factuality-1to10-v1"
MIN_SCORE, MAX_SCORE = 1, 10
#: Characters of a reply or response body quoted in error messages.
EXCERPT_CHARS = 200
#: HTTP statuses retried with backoff (besides connection errors and timeouts).
RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
#: Longest wait (s) honoured from a ``Retry-After`` header.
MAX_RETRY_AFTER_S = 60.0
CACHE_FILE = "factuality_cache.sqlite"

SYSTEM_PROMPT = (
    "You are an impartial grader of factual accuracy. You compare a model's answer to a question "
    "with the ground-truth answer and rate how factually consistent the model's answer is with it."
)

USER_TEMPLATE = """Rate how factually consistent the model's answer is with the ground-truth answer to the question, on an integer scale from 1 to 10:
10 = fully correct and complete: it states the facts of the ground truth and contradicts none of them;
7-9 = mostly correct: the key facts are right, a minor detail is missing or imprecise;
4-6 = partially correct: some key facts are right, others are missing or wrong;
2-3 = mostly wrong: only a small part agrees with the ground truth;
1 = wrong, contradicting the ground truth, unrelated to the question, or no answer.
Judge only the facts that answer the question; ignore wording, style, grammar and length.

Question: {question}
Ground truth: {ground_truth}
Model's answer: {answer}

Reply with the score only, in the form "Score: N"."""

_DECIMAL = r"(?<![\d.])(\d+)(?!\.\d|\d)"  # an integer not part of a decimal or a longer number
_SCORE_PATTERNS = (
    re.compile(r"(?i)\b(?:score|rating)\b(?:\s*(?:is|of))?[\s*:=]*" + _DECIMAL),
    re.compile(_DECIMAL + r"\s*(?:/\s*10\b|out\s+of\s+10\b)", re.I),
)
_INTEGER = re.compile(_DECIMAL)


class JudgeError(RuntimeError):
    """The judge endpoint failed: an HTTP error that is not retried (e.g. 400, 401, 404),
    429/5xx still returned after the retries, or a response body that is not a chat completion."""


class JudgeUnavailableError(JudgeError):
    """The judge endpoint could not be reached (connection refused, DNS failure, timeout) after the retries."""


class JudgeReplyError(JudgeError):
    """The judge replied, but its reply holds no score in 1..10 (or is not a chat-completion JSON body)."""


# ---------------------------------------------------------------- rubric and parsing

def build_messages(question: str, ground_truth: str, answer: str) -> list[dict]:
    """Chat messages asking for the 1-10 factuality score of ``answer`` (paper's rubric, this wording)."""
    user = USER_TEMPLATE.format(question=question.strip(), ground_truth=ground_truth.strip(),
                                answer=answer.strip() or "(empty answer)")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_score(reply: str) -> int | None:
    """The integer score in 1..10 stated by a judge reply, or None.

    Read, first rule that matches wins: "Score: 7" / "Rating = 7" / "score is **7**",
    then "7/10" / "7 out of 10", then a reply whose only integer is the score
    ("7", "**7**", "I would rate it 7."). A decimal ("7.5") or an integer
    outside 1..10 is not a score.
    """
    for pattern in _SCORE_PATTERNS:
        match = pattern.search(reply)
        if match:
            return _in_range(int(match.group(1)))
    integers = {int(m) for m in _INTEGER.findall(reply)}
    return _in_range(integers.pop()) if len(integers) == 1 else None


def _in_range(value: int) -> int | None:
    return value if MIN_SCORE <= value <= MAX_SCORE else None


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = text if isinstance(text, str) else repr(text)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def cache_key(model: str, question: str, ground_truth: str, answer: str) -> str:
    """SHA-256 (hex) of (model, :data:`RUBRIC_VERSION`, question, ground truth, answer)."""
    payload = json.dumps([model, RUBRIC_VERSION, question, ground_truth, answer], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- disk cache

class ScoreCache:
    """Scores on disk: one SQLite file (:data:`CACHE_FILE`) under ``cache_dir``.

    Each insert is its own committed transaction (atomic; safe for several
    threads or processes sharing the directory). Stores the score and the
    judge's raw reply, keyed by :func:`cache_key`.
    """

    def __init__(self, cache_dir: str | os.PathLike):
        self.path = Path(cache_dir) / CACHE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn, conn:
            conn.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score INTEGER NOT NULL, "
                         "model TEXT, rubric TEXT, reply TEXT)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def get(self, key: str) -> int | None:
        """The cached score of ``key``, or None."""
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT score FROM scores WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def put(self, key: str, score: int, model: str, reply: str) -> None:
        """Store ``score`` (and the reply it was read from) under ``key``, committed at once."""
        with closing(self._connect()) as conn, conn:
            conn.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?)",
                         (key, int(score), model, RUBRIC_VERSION, reply))


# ---------------------------------------------------------------- the judge

class FactualityJudge:
    """1-10 factuality judge (Liu et al. 2025, MLLMU-Bench) over an OpenAI-compatible endpoint.

    Args:
        base_url: the API root, e.g. ``http://localhost:8000/v1`` (vLLM) or
            ``https://api.openai.com/v1``; requests go to ``{base_url}/chat/completions``
            (a URL already ending in ``/chat/completions`` is accepted as is).
        model: the judge model name sent in each request.
        api_key_env: name of the environment variable holding the API key, read
            at each request; when it is unset or empty no ``Authorization`` header
            is sent (a local vLLM server needs none). The key is never logged.
        cache_dir: directory of the score cache (:class:`ScoreCache`); None: no cache.
        max_retries: retries after the first attempt (so at most ``max_retries + 1``
            requests) on connection errors, timeouts, HTTP 429 and 5xx.
        backoff_s: wait in seconds before the first retry; doubled at each retry
            (0.5, 1, 2, 4 s by default). A 429/503 ``Retry-After`` header (seconds)
            that asks for longer is honoured, up to :data:`MAX_RETRY_AFTER_S`.
        timeout_s: per-request socket timeout in seconds.
        max_tokens: most tokens of the judge's reply (the rubric asks for "Score: N").

    Requests use ``temperature`` 0, so a score is reproducible for a given judge model.
    """

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 cache_dir: str | os.PathLike | None = None, max_retries: int = 4,
                 backoff_s: float = 0.5, timeout_s: float = 30, max_tokens: int = 16):
        if max_retries < 0 or backoff_s < 0 or timeout_s <= 0:
            raise ValueError(f"need max_retries >= 0, backoff_s >= 0, timeout_s > 0; got "
                             f"{max_retries}, {backoff_s}, {timeout_s}")
        self.url = chat_completions_url(base_url)
        self.model = model
        self.api_key_env = api_key_env
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.cache = ScoreCache(cache_dir) if cache_dir is not None else None

    def __repr__(self) -> str:
        return (f"FactualityJudge(url={self.url!r}, model={self.model!r}, api_key_env={self.api_key_env!r}, "
                f"rubric={RUBRIC_VERSION!r})")

    def score(self, question: str, ground_truth: str, answer: str) -> int:
        """Factuality of ``answer`` against ``ground_truth`` for ``question``: an integer in 1..10.

        Served from the cache when the same (model, rubric, question, ground truth,
        answer) was scored before; otherwise one chat-completion request (plus retries).

        Raises:
            JudgeUnavailableError: the endpoint was unreachable after the retries.
            JudgeReplyError: the reply states no score in 1..10.
            JudgeError: any other HTTP or response-body failure.
        """
        key = cache_key(self.model, question, ground_truth, answer)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        reply = self.complete(build_messages(question, ground_truth, answer))
        value = parse_score(reply)
        if value is None:
            raise JudgeReplyError(f"judge {self.model!r} at {self.url} gave no score in {MIN_SCORE}..{MAX_SCORE} "
                                  f"for question {_excerpt(question, 120)!r}; its reply: {_excerpt(reply)!r}")
        if self.cache is not None:
            self.cache.put(key, value, self.model, reply)
        return value

    def score_many(self, items: Iterable[Sequence[str]], concurrency: int = 1) -> list[int]:
        """Scores (1..10) of ``(question, ground_truth, answer)`` triples, in their order.

        ``concurrency`` > 1 sends that many requests at a time (threads). The
        first error is raised (see :meth:`score`); scores obtained before it are cached.
        """
        triples = [tuple(item) for item in items]
        for index, triple in enumerate(triples):
            if len(triple) != 3:
                raise ValueError(f"item {index}: expected (question, ground_truth, answer), got {len(triple)} values")
        if concurrency <= 1 or len(triples) <= 1:
            return [self.score(*triple) for triple in triples]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(lambda triple: self.score(*triple), triples))

    # ------------------------------------------------------------ HTTP

    def complete(self, messages: list[dict]) -> str:
        """The assistant text of one chat completion (``temperature`` 0), with retries.

        Raises:
            JudgeUnavailableError, JudgeError, JudgeReplyError: see :meth:`score`.
        """
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0,
                           "max_tokens": self.max_tokens}).encode("utf-8")
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                status, raw = self._post(body)
            except _Retryable as failure:
                if attempt + 1 == attempts:
                    raise failure.final_error(self, attempts) from failure.__cause__
                delay = max(self.backoff_s * 2 ** attempt, failure.retry_after_s)
                log.warning("judge request to %s failed (%s); retry %d/%d in %.2f s",
                            self.url, failure.reason, attempt + 1, self.max_retries, delay)
                _sleep(delay)
                continue
            return _reply_text(raw, self.url)
        raise AssertionError("unreachable")  # pragma: no cover

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post(self, body: bytes) -> tuple[int, bytes]:
        """One POST; returns (status, body) on 2xx, raises _Retryable or JudgeError otherwise."""
        request = urllib.request.Request(self.url, data=body, headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            detail = _excerpt(_read_error_body(error))
            if error.code in RETRY_STATUSES:
                raise _Retryable(f"HTTP {error.code}", status=error.code, detail=detail,
                                 retry_after_s=_retry_after(error)) from error
            raise JudgeError(f"judge endpoint {self.url} answered HTTP {error.code} {error.reason}: {detail!r}") \
                from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise _Retryable(f"{type(error).__name__}: {reason}") from error


class _Retryable(Exception):
    """A failure worth retrying: a connection error or timeout (status None), or HTTP 429/5xx."""

    def __init__(self, reason: str, status: int | None = None, detail: str = "", retry_after_s: float = 0.0):
        super().__init__(reason)
        self.reason, self.status, self.detail, self.retry_after_s = reason, status, detail, retry_after_s

    def final_error(self, judge: FactualityJudge, attempts: int) -> JudgeError:
        """The error to raise when the last attempt failed this way."""
        if self.status is not None:
            return JudgeError(f"judge endpoint {judge.url} still answered HTTP {self.status} after {attempts} "
                              f"attempts: {self.detail!r}")
        return JudgeUnavailableError(
            f"judge endpoint {judge.url} is unreachable after {attempts} attempts ({self.reason}). "
            f"Start an OpenAI-compatible server for the judge model, e.g. `vllm serve {judge.model} --port 8000` "
            f"(then use http://localhost:8000/v1), or set --judge_url / --url to a reachable endpoint.")


_sleep = time.sleep  # module-level so tests can record the backoff delays


def chat_completions_url(base_url: str) -> str:
    """``{base_url}/chat/completions`` (trailing slashes removed; a full endpoint URL is kept)."""
    url = base_url.strip().rstrip("/")
    if not re.match(r"(?i)^https?://", url):
        raise ValueError(f"judge URL must start with http:// or https://, got {base_url!r}")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def _read_error_body(error: urllib.error.HTTPError) -> str:
    try:
        return error.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return ""


def _retry_after(error: urllib.error.HTTPError) -> float:
    """Seconds asked by a ``Retry-After`` header (capped at :data:`MAX_RETRY_AFTER_S`), 0 when absent."""
    value = error.headers.get("Retry-After") if error.headers is not None else None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S) if math.isfinite(seconds) else 0.0


def _reply_text(raw: bytes, url: str) -> str:
    """``choices[0].message.content`` of a chat-completion body (a list of text parts is joined)."""
    text = raw.decode("utf-8", "replace")
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeReplyError(f"judge endpoint {url} returned a body that is not a chat completion "
                              f"(expected JSON with choices[0].message.content): {_excerpt(text)!r}") from None
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise JudgeReplyError(f"judge endpoint {url} returned no text content: {_excerpt(text)!r}")
    return content


# ---------------------------------------------------------------- lm-eval samples

def read_gen_samples(path: str | os.PathLike) -> list[tuple[str, str, str]]:
    """(question, ground truth, model answer) of each line of an lm-eval ``--log_samples`` file.

    Each line is a JSON object with ``doc.question``, ``doc.answer`` (ground truth),
    ``doc.kind == "gen"`` and ``filtered_resps[0]`` (the model's answer). Blank lines are skipped.

    Raises:
        ValueError: a line that is not JSON, lacks a field, or is not a generation question;
            the message names the file and line.
    """
    samples = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if line.strip():
                samples.append(_gen_sample(line, f"{path}:{line_no}"))
    return samples


def _gen_sample(line: str, where: str) -> tuple[str, str, str]:
    try:
        record = json.loads(line)
        doc, responses = record["doc"], record["filtered_resps"]
        question, truth, kind = doc["question"], doc["answer"], doc.get("kind")
        answer = responses[0]
    except ValueError as error:
        raise ValueError(f"{where}: not a JSON line ({error})") from None
    except (KeyError, IndexError, TypeError) as error:
        raise ValueError(f"{where}: expected doc.question, doc.answer and filtered_resps[0] ({error!r} missing)") \
            from None
    if kind != "gen":
        raise ValueError(f"{where}: doc.kind is {kind!r}, the factuality judge scores generation samples "
                         f"(kind 'gen', tasks mllmu_*_gen_*)")
    if isinstance(answer, list):  # some lm-eval versions nest the filtered response
        answer = answer[0] if answer else ""
    return str(question), str(truth), str(answer)


def judge_samples(samples_jsonl_path: str | os.PathLike, judge: FactualityJudge, concurrency: int = 1) -> dict:
    """Factuality of every answer of an lm-eval ``--log_samples`` file of a generation task.

    Returns:
        ``{"factuality": mean score (1-10 scale), "n": number of samples, "scores": [int, ...]}``
        in the file's order.

    Raises:
        ValueError: a malformed line (see :func:`read_gen_samples`) or a file with no samples.
        JudgeError (and subclasses): see :meth:`FactualityJudge.score`.
    """
    samples = read_gen_samples(samples_jsonl_path)
    if not samples:
        raise ValueError(f"{samples_jsonl_path}: no samples to judge")
    scores = judge.score_many(samples, concurrency=concurrency)
    return {"factuality": sum(scores) / len(scores), "n": len(scores), "scores": scores}


# ---------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mllmu_tasks.judge",
        description="LLM-judge factuality (1-10, MLLMU-Bench rubric) of lm-eval --log_samples files "
                    "of the generation tasks; prints one line per file.")
    parser.add_argument("samples", nargs="+", help="samples_mllmu_*_gen_*.jsonl files")
    parser.add_argument("--url", "--judge_url", dest="url", required=True,
                        help="OpenAI-compatible API root, e.g. http://localhost:8000/v1")
    parser.add_argument("--model", required=True, help="judge model name")
    parser.add_argument("--cache", default=None, help="score cache directory (default: no cache)")
    parser.add_argument("--api_key_env", default="OPENAI_API_KEY",
                        help="environment variable holding the API key (default OPENAI_API_KEY)")
    parser.add_argument("--timeout", type=float, default=30, help="per-request timeout, seconds (default 30)")
    parser.add_argument("--max_retries", type=int, default=4, help="retries on connection errors, 429, 5xx")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at a time (default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Score each samples file and print ``PATH  factuality=M.MM  n=N``; 1 on a judge or file error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        judge = FactualityJudge(args.url, args.model, api_key_env=args.api_key_env, cache_dir=args.cache,
                                max_retries=args.max_retries, timeout_s=args.timeout)
    except ValueError as error:  # a URL without http://, a bad setting: one line, exit 2
        parser.error(str(error))
    for path in args.samples:
        try:
            result = judge_samples(path, judge, concurrency=args.concurrency)
        except (JudgeError, ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"{path}\tfactuality={result['factuality']:.2f}\tn={result['n']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
