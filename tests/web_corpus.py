"""Papers and payloads the web app's page, API and feed tests share: dated arXiv papers (one
with ``<script>`` in its title, one hidden by a moderator in the API's home), a hostile
comment, hostile search queries, and the API accounts' tokens."""

HOSTILE = ('"unbalanced', "x" * 10_000, "nope:field words", "'; DROP TABLE papers; --", "a\x00b\x07c", "NEAR(a b)")
XSS_TITLE = "Scaling laws for language models <script>alert(1)</script>"
EXTRA = [
    {"id": "2403.01234", "title": XSS_TITLE, "authors": ["Ada Lovelace", "Alan Turing"], "categories": ["cs.CL"],
     "submitted": "2024-03-15", "abstract": "We fit scaling laws for large language models in $O(n \\log n)$ time "
     "and show how language models grow.", "links": {"code": "https://github.com/example/scaling"}},
    {"id": "2402.05678", "title": "Retrieval with large language models", "authors": ["Ada Lovelace"],
     "categories": ["cs.IR"], "submitted": "2024-02-10", "abstract": "Large language models read retrieved text."},
    {"id": "2312.09999", "title": "Large language models for scientific discovery", "authors": ["Grace Hopper"],
     "categories": ["cs.CL"], "submitted": "2023-12-05", "abstract": "Language models propose experiments."},
]
SCRIPT_COMMENT = "Nice! <script>alert('c')</script> <img src=x onerror=alert(2)> **bold**"
MORE_HOSTILE = ("since:2024-99 until:yesterday", "author:", "cat:cs.*,,,", "\u202eevil", "((((", "-", "😀" * 500)
HIDDEN = "2312.09999"  # hidden by a moderator in the API tests' home
TOKENS = {"alice": "alice-token-0123456789", "bob": "bob-token-0123456789", "carol": "carol-admin-token-0123"}
PASSWORD = "correct horse battery"
