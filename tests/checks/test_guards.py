"""Push guards: secrets in the diff always block; weakening changes block or warn by policy.

Every fake credential is assembled at run time, so this file holds none a scanner would flag.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest

from clone.errors import ConfigError, GitError
from clone.util.git import Git
from clone.checks.guards import FileDiff, Finding, GuardPolicy, blocking, check, incident, parse_diff, render, scan
from clone.checks.redact import MASK, find_secrets, mask_secrets
from tests.repos import git


def fake(length: int, alphabet: str = string.ascii_letters + string.digits, seed: int = 7) -> str:
    """Deterministic random-looking characters, like real key material."""
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


B64 = string.ascii_letters + string.digits + "+/"
GH_TOKEN = "ghp" + "_" + fake(36)
PEM_HEADER = "-----BEGIN " + "RSA PRIVATE KEY-----"
PEM = "\n".join([PEM_HEADER, *(fake(64, B64, seed=i) for i in range(4)), fake(20, B64, 9) + "==",
                 "-----END " + "RSA PRIVATE KEY-----"])


class Repo:
    """A real repository with a base commit; ``change`` commits on top, ``scan`` checks base..HEAD."""

    def __init__(self, path: Path, files: dict[str, str | bytes]) -> None:
        self.path = path
        path.mkdir()
        git(path, "init", "--quiet", "-b", "main")
        self.write(files)
        git(path, "add", "-A")
        git(path, "commit", "--quiet", "--allow-empty", "-m", "base")
        self.base = git(path, "rev-parse", "HEAD")

    def write(self, files: dict[str, str | bytes | None]) -> None:
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)

    def change(self, files: dict[str, str | bytes | None] | None = None,
               moves: dict[str, str] | None = None) -> Repo:
        for old, new in (moves or {}).items():
            (self.path / new).parent.mkdir(parents=True, exist_ok=True)
            git(self.path, "mv", old, new)
        self.write(files or {})
        git(self.path, "add", "-A")
        git(self.path, "commit", "--quiet", "--allow-empty", "-m", "agent pass")
        return self

    def scan(self, policy: GuardPolicy | None = None) -> list[Finding]:
        return scan(Git(self.path), self.base, policy=policy or GuardPolicy())


@pytest.fixture
def repo(tmp_path: Path):
    return lambda files=None: Repo(tmp_path / "repo", files or {"README.md": "# app\n"})


def rules(findings: list[Finding]) -> list[tuple[str, str, int | None]]:
    return [(f.rule, f.path, f.line) for f in findings]


# ------------------------------------------------------------------------------------ parse_diff
def test_parse_diff_reads_line_numbers_renames_deletions_and_quoted_paths():
    text = "\n".join([
        "diff --git a/app.py b/app.py", "index 1..2 100644", "--- a/app.py", "+++ b/app.py",
        "@@ -2,2 +2 @@ def f():", "-    old = 1", "-    older = 2", "+    new = 1",
        "@@ -9,0 +9,2 @@", "+++ not a header, an added line", "+--- nor this", "\\ No newline at end of file",
        "diff --git a/old name.py b/new name.py", "similarity index 90%",
        "rename from old name.py", "rename to new name.py",
        "diff --git a/gone.txt b/gone.txt", "deleted file mode 100644", "--- a/gone.txt", "+++ /dev/null",
        "@@ -1 +0,0 @@", "-bye",
        'diff --git "a/tab\\there.txt" "b/tab\\there.txt"', "new file mode 100644", "--- /dev/null",
        '+++ "b/tab\\there.txt"', "@@ -0,0 +1 @@", "+hi",
        "diff --git a/empty file b/empty file", "new file mode 100644", "index 0000000..e69de29",
        "diff --git a/sp ace.txt b/sp ace.txt", "--- a/sp ace.txt\t", "+++ b/sp ace.txt\t",
        "@@ -1 +1 @@", "-a", "+b",
        "diff --git a/blob.bin b/blob.bin", "--- a/blob.bin", "+++ b/blob.bin",
        "@@ -1 +1 @@", "-\x00x", "+\x00y",
        "",
    ])
    files = parse_diff(text)
    assert [(f.old_path, f.new_path) for f in files] == [
        ("app.py", "app.py"), ("old name.py", "new name.py"), ("gone.txt", None), (None, "tab\there.txt"),
        (None, "empty file"), ("sp ace.txt", "sp ace.txt"), ("blob.bin", "blob.bin")]
    app = files[0]
    assert app.removed == ((2, "    old = 1"), (3, "    older = 2"))
    assert app.added == ((2, "    new = 1"), (9, "++ not a header, an added line"), (10, "--- nor this"))
    assert files[2].removed == ((1, "bye"),) and files[3].added == ((1, "hi"),)
    assert [f.binary for f in files] == [False] * 6 + [True]


def test_parse_diff_of_nothing_is_empty():
    assert parse_diff("") == []


# ------------------------------------------------------------------------------------ secrets
def test_planted_github_token_and_rsa_key_block_with_masked_details(repo):
    r = repo({"app/config.py": "DEBUG = False\n"})
    r.change({"app/config.py": f"DEBUG = False\nGITHUB = '{GH_TOKEN}'\n", "deploy/id_rsa": PEM + "\n"})
    findings = r.scan()
    assert rules(findings) == [("secret", "app/config.py", 2), ("secret", "deploy/id_rsa", 1)]
    assert all(f.blocking for f in findings)
    text = render(findings)
    assert text.splitlines() == [
        "BLOCK secret in app/config.py:2: GitHub token (ghp_****)",
        f"BLOCK secret in deploy/id_rsa:1: RSA private key ({PEM_HEADER})",
    ]
    assert GH_TOKEN[4:] not in text and fake(64, B64, seed=0) not in text


def test_secrets_are_found_in_new_memory_archive_files_and_still_block_under_warn(repo):
    r = repo().change({".clone_memory_archive/2026-01.md": f"notes\ntoken {GH_TOKEN}\n"})
    findings = r.scan(GuardPolicy(weakening="warn"))
    assert rules(findings) == [("secret", ".clone_memory_archive/2026-01.md", 2)]  # adding archives is fine
    assert blocking(findings) == findings


def test_only_added_lines_are_scanned(repo):
    r = repo({"old.env": f"GITHUB_TOKEN={GH_TOKEN}\nA=1\n"})
    r.change({"old.env": f"GITHUB_TOKEN={GH_TOKEN}\nA=2\n"})
    assert r.scan() == []  # the token was already there: not this pass's doing


def test_binary_looking_files_and_gitattributes_cannot_hide_a_secret(repo):
    # One NUL byte once marked a file binary and switched its scan off.
    r = repo({".gitattributes": "*.txt -diff\n"})
    r.change({"image.bin": b"\x89PNG\x00\x01" + GH_TOKEN.encode() + b"\x00\n", "notes.txt": f"{GH_TOKEN}\n",
              "blob.dat": b"\x00\x00AKIA" + b"IOSFODNN7EXAMPLQ" + b"\x00 padding\n"})
    assert sorted(rules(r.scan())) == [("secret", "blob.dat", 1), ("secret", "image.bin", 1),
                                       ("secret", "notes.txt", 1)]


def test_detect_secrets_finds_what_the_hand_rules_do_not(repo):
    r = repo({"README.md": "hi\n"})
    # A provider format Clone's own ~10 rules have no pattern for: a SendGrid key (made up).
    key = "SG." + "ngeVfQFYQlKU0ufo8x5d1A" + "." + "TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr"
    r.change({"mail.py": f"SENDGRID = '{key}'\n"})
    findings = [f for f in r.scan() if f.rule == "secret"]
    assert [(f.path, f.line, f.detail) for f in findings] == [("mail.py", 1, "SendGrid API Key (detect-secrets)")]


@pytest.mark.parametrize(("line", "kind", "preview"), [
    (f"token: {GH_TOKEN}", "GitHub token", "ghp_****"),
    ("GH = 'github_pat_" + fake(22) + "_" + fake(59, seed=3) + "'", "GitHub fine-grained token",
     "github_pat_****"),
    ("aws_access_key_id = " + "AKIA" + fake(16, string.ascii_uppercase + string.digits), "AWS access key id",
     "AKIA****"),
    ("aws_secret_access_key = " + fake(40, B64, seed=4), "AWS secret access key", "****"),
    ("OPENAI_API_KEY=sk-proj-" + fake(48, seed=5), "OpenAI API key", "sk-****"),
    ("key = 'sk-" + fake(48, seed=6) + "'", "OpenAI API key", "sk-****"),
    ("ANTHROPIC_API_KEY=sk-ant-api03-" + fake(93, seed=8) + "AA", "Anthropic API key", "sk-ant-****"),
    ("slack = 'xoxb-" + "1234098-" + fake(24, seed=9) + "'", "Slack token", "xoxb-****"),
    ("url = 'https://hooks.slack.com/services/T0" + "ABC12DEF/B0XYZ34GHI/" + fake(24, seed=10) + "'",
     "Slack webhook", "****"),
    ("maps_key = 'AIza" + fake(35, seed=11) + "'", "Google API key", "AIza****"),
    ("stripe.api_key = 'sk_live_" + fake(24, seed=12) + "'", "Stripe live key", "sk_live_****"),
    ('db_password = "' + fake(16, seed=13) + '"', "credential assignment", "db_password = ****"),
    ("  client_secret: " + fake(32, seed=14), "credential assignment", "client_secret = ****"),
    ('{"apiKey": "' + fake(32, "0123456789abcdef", seed=15) + '"}', "credential assignment",
     "apiKey = ****"),
    ("DATABASE_URL=postgres://app:" + fake(20, seed=16) + "@db:5432/app", "password in a URL",
     "postgres://...:****@"),
    ('"private_key": "' + "-----BEGIN " + "PRIVATE KEY-----\\n" + fake(64, B64) + '\\n"', "private key",
     "-----BEGIN PRIVATE KEY-----"),
])
def test_secret_rules_find_real_looking_credentials(line, kind, preview):
    hits = find_secrets([line])
    assert [(h.kind, h.preview) for h in hits] == [(kind, preview)]
    assert mask_secrets(line) != line or kind in {"credential assignment", "password in a URL"}


@pytest.mark.parametrize("line", [
    "commit = '3f786850e387550fdab836ed7e6dc881de23001b'",                       # a git SHA
    "id = '123e4567-e89b-12d3-a456-426614174000'",                               # a UUID
    '"integrity": "sha512-' + fake(86, B64, seed=20) + '=="',                    # a lockfile hash
    'hash = "sha256:' + fake(64, "0123456789abcdef", seed=21) + '"',             # poetry.lock
    "GITHUB_TOKEN=ghp_" + "x" * 36,                                             # documented placeholders
    "token = 'ghp_" + "X" * 36 + "'",
    "export GITHUB_TOKEN=ghp_" + "0123456789abcdefghij0123456789abcdef",
    "aws_access_key_id = " + "AKIA" + "IOSFODNN7EXAMPLE",
    "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
    'password = "hunter2"',                                                      # short: not key material
    'password = os.environ["DB_PASSWORD"]',
    'token = "GITHUB_TOKEN_NAME_V2"',                                            # a name, not a value
    "max_tokens = 409600000000",
    'password_hash = "' + fake(40, seed=22) + '"',                               # not a credential name
    "api_key: ${{ secrets.API_KEY }}",
    'token = "<your-token-here>"',
    "api_key = 'sk-your-key-goes-here-please'",
    'class="task-list-item-checkbox-wrapper"',                                   # sk- inside a word
    "pip install sk-learn-compatible-wrapper",
    f'if line.startswith("{PEM_HEADER}"):',                                      # a header, no key material
    "url = 'postgres://postgres:postgres@localhost/app'",
    "Authorization: Bearer <token>",
])
def test_secret_rules_ignore_common_false_positives(line):
    assert find_secrets([line]) == []


def test_private_key_header_counts_only_with_key_material_after_it():
    assert [h.line_index for h in find_secrets(["x", *PEM.splitlines()])] == [1]
    assert find_secrets([PEM_HEADER, "...", "-----END " + "RSA PRIVATE KEY-----"]) == []


def test_fixtures_and_lockfiles_get_provider_rules_only(repo):
    assignment = 'password = "' + fake(16, seed=13) + '"\n'
    r = repo().change({"tests/test_login.py": assignment, "package-lock.json": assignment,
                       "app/db.py": assignment, "tests/test_api.py": f"TOKEN = '{GH_TOKEN}'\n"})
    assert rules(r.scan()) == [("secret", "app/db.py", 1), ("secret", "tests/test_api.py", 1)]


def test_unquoted_values_count_in_config_files_not_in_code(repo):
    value = fake(24, seed=17)
    r = repo().change({".env": f"API_KEY={value}\n", "deploy/app.ini": f"[db]\npassword = {value} ; prod\n",
                       "app/keys.py": "MLKEM768X25519PrivateKey = hpke.MLKEM768X25519PrivateKey\n"
                                      "def sign(\n    private_key: PKCS7PrivateKeyTypes\n"})
    assert rules(r.scan()) == [("secret", ".env", 1), ("secret", "deploy/app.ini", 2)]


# ------------------------------------------------------------------------------------ deleted tests
def test_deleted_test_files_block(repo):
    r = repo({"tests/test_a.py": "def test_a():\n    assert 1\n", "tests/fixtures/data.json": "{}\n",
              "web/button.test.tsx": "it('renders', () => {})\n", "pkg/thing_test.go": "package pkg\n",
              "src/app.py": "x = 1\n"})
    r.change({"tests/test_a.py": None, "tests/fixtures/data.json": None, "web/button.test.tsx": None,
              "pkg/thing_test.go": None, "src/app.py": None})
    findings = r.scan()
    assert sorted(rules(findings)) == [
        ("deleted-test", "pkg/thing_test.go", None), ("deleted-test", "tests/fixtures/data.json", None),
        ("deleted-test", "tests/test_a.py", None), ("deleted-test", "web/button.test.tsx", None)]
    assert "BLOCK deleted-test in tests/test_a.py: test file deleted (1 test(s))" in render(findings)


def test_renamed_or_split_test_files_are_not_deleted_tests(repo):
    body = ("import app\n\n\ndef test_one():\n    assert app.one() == 1\n\n\n"
            "def test_two():\n    assert app.two()\n")
    r = repo({"tests/test_app.py": body, "tests/test_big.py": body.replace("test_", "test_big_")})
    split_one = "import app\n\n\ndef test_big_one():\n    assert app.one() == 1\n"
    r.change({"tests/test_big.py": None, "tests/test_big_one.py": split_one,
              "tests/test_big_two.py": "import app\n\n\ndef test_big_two():\n    assert app.two()\n"},
             moves={"tests/test_app.py": "tests/unit/test_app.py"})
    assert r.scan() == []


def test_a_test_moved_out_of_the_test_layout_is_a_deleted_test(repo):
    r = repo({"tests/test_app.py": "def test_one():\n    pass\n"})
    r.change(moves={"tests/test_app.py": "attic/app.py"})
    assert [f.detail for f in r.scan()] == ["test file moved out of the test layout to attic/app.py"]


def test_removed_test_functions_are_named(repo):
    r = repo({"tests/test_app.py": "def test_one():\n    pass\n\n\nasync def test_two():\n    pass\n",
              "lib.rs": "#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {}\n}\n",
              "src/ui.spec.ts": "describe('ui', () => {\n  it('draws', () => {})\n"
                                "  it(\"clicks\", () => {})\n})\n",
              "main_test.go": "package main\n\nfunc TestMain(t *testing.T) {}\n",
              "app/db.py": "def test_connection(conn):\n    return conn.ping()\n"})
    r.change({"tests/test_app.py": "def test_one():\n    pass\n", "lib.rs": "mod tests {}\n",
              "src/ui.spec.ts": "describe('ui', () => {\n  it('draws', () => {})\n})\n",
              "main_test.go": "package main\n",
              "app/db.py": None})  # a helper named test_* outside the test layout is not a test
    assert sorted((f.path, f.detail) for f in r.scan()) == [
        ("lib.rs", "test adds removed (was line 3)"),
        ("main_test.go", "test TestMain removed (was line 3)"),
        ("src/ui.spec.ts", "test clicks removed (was line 3)"),
        ("tests/test_app.py", "test test_two removed (was line 5)"),
    ]


def test_editing_or_moving_a_test_function_is_not_removing_it(repo):
    r = repo({"tests/test_a.py": "def test_x(tmp_path):\n    pass\n",
              "tests/test_b.py": "def test_y():\n    pass\n"})
    r.change({"tests/test_a.py": "def test_x(tmp_path, monkeypatch):\n    pass\n\n\n"
                                 "def test_y():\n    pass\n",
              "tests/test_b.py": "X = 1\n"})
    assert r.scan() == []


# ------------------------------------------------------------------------------------ skip markers
def test_new_skip_markers_are_flagged_with_their_line(repo):
    r = repo({"tests/test_a.py": "def test_a():\n    pass\n"})
    r.change({"tests/test_a.py": "import pytest\n\n\n@pytest.mark.skip(reason='flaky')\ndef test_a():\n"
                                 "    pytest.skip('later')\n",
              "tests/test_u.py": "import unittest\n\n\n@unittest.skipIf(True, 'x')\n"
                                 "class T(unittest.TestCase):\n"
                                 "    def test_b(self):\n        self.skipTest('no')\n",
              "web/a.test.js": "it.skip('a', () => {})\nxit('b', () => {})\ndescribe.skip('c', () => {})\n",
              "pkg/a_test.go": "func TestA(t *testing.T) {\n\tt.Skip(\"later\")\n}\n",
              "src/lib.rs": "#[test]\n#[ignore]\nfn slow() {}\n"})
    assert sorted(rules(r.scan())) == [
        ("skip-marker", "pkg/a_test.go", 2), ("skip-marker", "src/lib.rs", 2),
        ("skip-marker", "tests/test_a.py", 4), ("skip-marker", "tests/test_a.py", 6),
        ("skip-marker", "tests/test_u.py", 4), ("skip-marker", "tests/test_u.py", 7),
        ("skip-marker", "web/a.test.js", 1), ("skip-marker", "web/a.test.js", 2),
        ("skip-marker", "web/a.test.js", 3)]
    assert "WARN skip-marker in tests/test_a.py:4: new skip marker '@pytest.mark.skip'" in render(
        r.scan(GuardPolicy(weakening="warn")))


def test_skip_lookalikes_and_moved_markers_are_not_flagged(repo):
    skipped = "@pytest.mark.skip(reason='slow')\ndef test_slow():\n    pass\n"
    r = repo({"tests/test_a.py": "import pytest\n\n\n" + skipped + "\n\ndef test_b():\n    pass\n"})
    r.change({"tests/test_a.py": "import pytest\n\n\ndef test_b():\n    pass\n\n\n" + skipped,
              "src/db.js": "const page = cursor.skip(10).limit(5)\nconst fix = matrix(1)\n",
              "src/docs.py": 'HINT = "decorate with @pytest.mark.skip"\nrows.skip(3)\n'})
    assert r.scan() == []


# ------------------------------------------------------------------------------------ paths
def test_ci_definitions_are_workflow_edits(repo):
    r = repo({".github/workflows/ci.yml": "on: push\n", ".circleci/config.yml": "version: 2\n"})
    r.change({".github/workflows/ci.yml": "on: [push]\n", ".circleci/config.yml": None,
              ".gitlab-ci.yml": "test:\n  script: make\n", "docs/github-workflows.md": "# how CI works\n"})
    assert sorted((f.rule, f.path, f.detail) for f in r.scan()) == [
        ("workflow-edit", ".circleci/config.yml", "CI definition deleted"),
        ("workflow-edit", ".github/workflows/ci.yml", "CI definition modified"),
        ("workflow-edit", ".gitlab-ci.yml", "CI definition added"),
    ]


def test_protected_globs(repo):
    policy = GuardPolicy(protected_paths=("docs/", "*.cfg", " ./migrations ", "src/*/schema.sql", ""))
    assert policy.protected_paths == ("docs/", "*.cfg", "migrations", "src/*/schema.sql")
    files = {"docs/a/b.md": "x\n", "setup.cfg": "x\n", "pkg/tox.cfg": "x\n", "migrations/0001.py": "x\n",
             "src/app/schema.sql": "x\n", "docs.md": "x\n", "migrations.py": "x\n", "src/schema.sql": "x\n"}
    r = repo(files).change({path: "changed\n" for path in files}, moves={"docs.md": "docs/moved.md"})
    assert sorted(f.path for f in r.scan(policy) if f.rule == "protected-path") == [
        "docs/a/b.md", "docs/moved.md", "migrations/0001.py", "pkg/tox.cfg", "setup.cfg",
        "src/app/schema.sql"]


def test_memory_archive_is_append_only(repo):
    r = repo({".clone_memory_archive/2025-12.md": "old\n", ".clone_memory_archive/2025-11.md": "older\n"})
    r.change({".clone_memory_archive/2025-12.md": "rewritten\n", ".clone_memory_archive/2025-11.md": None,
              ".clone_memory_archive/2026-01.md": "new\n"})
    assert sorted((f.path, f.detail) for f in r.scan()) == [
        (".clone_memory_archive/2025-11.md", "memory archive file deleted"),
        (".clone_memory_archive/2025-12.md", "memory archive file modified"),
    ]


# ------------------------------------------------------------------------------------ policy and output
def test_policy_warn_flags_weakening_without_blocking(repo):
    r = repo({"tests/test_a.py": "def test_a():\n    pass\n"}).change({"tests/test_a.py": None})
    blocked, warned = r.scan(), r.scan(GuardPolicy(weakening="warn"))
    assert [f.blocking for f in blocked] == [True] and [f.blocking for f in warned] == [False]
    assert blocking(warned) == []
    assert render(warned) == "WARN deleted-test in tests/test_a.py: test file deleted (1 test(s))"


def test_policy_rejects_unknown_modes():
    with pytest.raises(ConfigError, match="CLONE_GUARD_POLICY"):
        GuardPolicy(weakening="off")


def test_incident_lists_the_blocking_findings_without_the_secret():
    findings = check([FileDiff(None, "a.py", added=((1, f"t = '{GH_TOKEN}'"),)),
                      FileDiff(".github/workflows/ci.yml", ".github/workflows/ci.yml", added=((1, "x"),))],
                     GuardPolicy(weakening="warn"))
    entry = incident(findings, "0123456789abcdef").render()
    assert "guard: push of 0123456789ab blocked (secret)" in entry
    assert "BLOCK secret in a.py:1: GitHub token (ghp_****)" in entry
    assert "WARN workflow-edit" in entry and GH_TOKEN[4:] not in entry and MASK not in GH_TOKEN


def test_a_clean_change_has_no_findings(repo):
    r = repo({"app.py": "x = 1\n"}).change({"app.py": "x = 2\n", "README.md": "# app\n\nmore\n"})
    assert r.scan() == []


def test_scan_of_an_unknown_base_raises_git_error(repo):
    r = repo()
    with pytest.raises(GitError, match="push guards"):
        scan(Git(r.path), "no-such-ref")


# ------------------------------------------------------------------------- check definitions
CHECK_DEF_CASES = [
    ({"Makefile": "test:\n\tpytest -q\nlint:\n\truff check .\n"}, {"Makefile": "test:\n\ttrue\nlint:\n\truff check .\n"},
     "Makefile target 'test' changed"),
    ({"Makefile": "check: lint\n\tpytest\n"}, {"Makefile": "check:\n\tpytest\n"}, "Makefile target 'check' changed"),
    ({"Makefile": "test:\n\tpytest\n"}, {"Makefile": "build:\n\tcc x.c\n"}, "Makefile target 'test' removed"),
    ({"package.json": '{"scripts": {"test": "jest", "build": "tsc"}}'},
     {"package.json": '{"scripts": {"test": "exit 0", "build": "tsc"}}'}, "package.json script 'test' changed"),
    ({"package.json": '{"scripts": {"test": "jest"}}'},
     {"package.json": '{"scripts": {"test": "jest", "pretest": "exit 0"}}'}, "package.json script 'pretest' added"),
    ({"pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\n"},
     {"pyproject.toml": "[tool.pytest.ini_options]\ntestpaths = ['tests']\naddopts = '--deselect tests/test_a.py'\n"},
     "pyproject.toml [tool.pytest] changed"),
    ({"pytest.ini": "[pytest]\ntestpaths = tests\n"}, {"pytest.ini": "[pytest]\ntestpaths = tests\naddopts = -k 'not slow'\n"},
     "pytest.ini [pytest] addopts added"),
    ({"tox.ini": "[testenv]\ncommands = pytest\n"}, {"tox.ini": "[testenv]\ncommands = python -c pass\n"},
     "tox.ini [testenv] commands changed"),
    ({"setup.cfg": "[tool:pytest]\nnorecursedirs = build\n"}, {"setup.cfg": "[tool:pytest]\nnorecursedirs = build tests\n"},
     "setup.cfg [tool:pytest] norecursedirs changed"),
    ({"tests/conftest.py": "import pytest\n"}, {"tests/conftest.py": "import pytest\ncollect_ignore = ['test_a.py']\n"},
     "conftest.py line that skips or deselects tests"),
    ({"noxfile.py": "import nox\n"}, {"noxfile.py": "import nox  # changed\n"}, "check tool configuration changed"),
]


@pytest.mark.parametrize(("before", "after", "detail"), CHECK_DEF_CASES,
                         ids=[c[2].split(" ")[0] + "-" + str(i) for i, c in enumerate(CHECK_DEF_CASES)])
def test_weakening_a_check_definition_is_flagged(repo, before, after, detail):
    r = repo({"README.md": "hi\n", **before})
    findings = [f for f in r.change(after).scan() if f.rule == "check-definition"]
    assert [f.detail for f in findings if f.detail.startswith(detail)], findings
    assert all(f.blocking for f in findings)
    assert not any(f.blocking for f in r.scan(GuardPolicy(weakening="warn")) if f.rule == "check-definition")


def test_unrelated_edits_to_check_files_are_not_flagged(repo):
    r = repo({"Makefile": "test:\n\tpytest\nbuild:\n\tcc a.c\n", "package.json": '{"scripts": {"test": "jest"}}'})
    r.change({"Makefile": "test:\n\tpytest\nbuild:\n\tcc a.c b.c\n",
              "package.json": '{"name": "x", "scripts": {"test": "jest", "start": "node ."}}',
              "tests/conftest.py": "import pytest\n\n@pytest.fixture\ndef db():\n    return 1\n"})
    assert [f for f in r.scan() if f.rule == "check-definition"] == []
