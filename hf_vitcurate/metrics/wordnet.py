"""Find WordNet 3.0 for METEOR's synonym matching, wherever it is installed.

Looked for, in order:

1. ``$VITCURATE_WORDNET`` or ``$WNSEARCHDIR`` (WordNet's own variable): a dict folder;
2. nltk's data path (``python -m nltk.downloader wordnet``), folder or zip;
3. the Debian/Ubuntu packages ``wordnet-base`` + ``wordnet-sense-index``
   (``/usr/share/wordnet``), and the upstream layouts ``/usr/local/WordNet-3.0/dict``,
   ``/usr/share/wordnet/dict``, ``/opt/homebrew/share/wordnet/dict`` ...

nltk's ``WordNetCorpusReader`` wants every file of the upstream dict folder. Debian ships
them all but ``lexnames`` (the names of the 45 lexicographer files, fixed since WordNet
1.5), so :class:`DictFolderReader` (a small subclass) serves a generated ``lexnames``
when the folder has none, and skips the Open Multilingual Wordnet mapping (not needed
for English synonyms, and it would look for nltk's own copy). Recent nltk (3.10 here)
only reads corpora under its data roots, so the folder is added to ``nltk.data.path``
(nltk's documented way to authorize a folder). The synonym sets METEOR uses do not
depend on ``lexnames``. :class:`LemmaNames` reads those synonym sets fast.

Without WordNet, :func:`load_wordnet` raises :class:`WordNetMissingError` saying how to
install it.

Example:
    >>> wn = load_wordnet()                                     # doctest: +SKIP
    >>> sorted(l.name() for s in wn.synsets("dog") for l in s.lemmas())[:3]  # doctest: +SKIP
    ['Canis_familiaris', 'andiron', 'blackguard']
"""

from __future__ import annotations

import functools
import io
import os
import re
from typing import Any

from ..errors import WordNetMissingError

FILES = (
    "cntlist.rev", "index.sense", "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb", "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)
# WordNet 3.0 lexicographer files (man 5 lexnames): number, name, syntactic category.
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
SYSTEM_DIRS = (
    "/usr/share/wordnet",
    "/usr/share/wordnet/dict",
    "/usr/local/WordNet-3.0/dict",
    "/usr/local/share/wordnet/dict",
    "/usr/local/share/wordnet",
    "/opt/homebrew/share/wordnet/dict",
    "/opt/local/share/WordNet-3.0/dict",
)
INSTALL_HINT = (
    "WordNet is needed for METEOR's synonym matching and was not found. Install it with one of:\n"
    "  apt-get install wordnet-base wordnet-sense-index      (Debian/Ubuntu: /usr/share/wordnet)\n"
    "  python -m nltk.downloader wordnet                      (nltk's data folder)\n"
    "or point $VITCURATE_WORDNET (or $WNSEARCHDIR) at a WordNet 3.0 dict folder."
)




def is_dict_dir(path: str) -> bool:
    """True if ``path`` holds the WordNet database files (with or without ``lexnames``)."""
    return os.path.isdir(path) and all(os.path.isfile(os.path.join(path, f)) for f in FILES)


def lexnames_text() -> str:
    """The ``lexnames`` file of WordNet 3.0."""
    return "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def _reader_class():
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class DictFolderReader(WordNetCorpusReader):
        """``WordNetCorpusReader`` for a bare WordNet dict folder (e.g. Debian's ``/usr/share/wordnet``)."""

        def open(self, fileid):
            if fileid == "lexnames" and not os.path.isfile(os.path.join(str(self._root.path), "lexnames")):
                return io.StringIO(lexnames_text())
            return super().open(fileid)

        def map_wn(self, version="wordnet"):
            return None  # English only: no mapping to another WordNet version for OMW

    return DictFolderReader


def _nltk_wordnet() -> str | None:
    import nltk

    for name in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):  # WordNet 3.0, as nltk's default
        try:
            return str(nltk.data.find(name))
        except LookupError:
            continue
    return None


def find_wordnet() -> str:
    """Path of a WordNet folder nltk's reader accepts (see the module docstring for the search order)."""
    for var in ("VITCURATE_WORDNET", "WNSEARCHDIR"):
        path = os.environ.get(var)
        if path:
            if not is_dict_dir(path):
                raise WordNetMissingError(f"${var}={path!r} is not a WordNet dict folder (needs {', '.join(FILES)})."
                                          f"\n{INSTALL_HINT}")
            return os.path.realpath(path)
    found = _nltk_wordnet()
    if found:
        return found
    for path in SYSTEM_DIRS:
        if is_dict_dir(path):
            return os.path.realpath(path)
    raise WordNetMissingError(INSTALL_HINT)


@functools.lru_cache(maxsize=None)
def load_wordnet(path: str | None = None):
    """nltk's WordNet reader on :func:`find_wordnet` (or ``path``), one per process and path."""
    import warnings

    import nltk

    path = path or find_wordnet()
    if ".zip" in path:
        return nltk.corpus.wordnet  # nltk's own lazy loader opens its zipped corpus
    if path not in nltk.data.path:
        nltk.data.path.append(path)  # authorize the folder for nltk's path sandbox (nltk >= 3.9)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")
        return _reader_class()(path, None)


_MARKER = re.compile(r"(.*?)(\([^()]*\))?$")  # nltk's rule: "galore(ip)" -> "galore"
_POS_FILES = {"n": "data.noun", "v": "data.verb", "a": "data.adj", "r": "data.adv"}


class LemmaNames:
    """``{l.name() for s in reader.synsets(word) for l in s.lemmas()}``, without building ``Synset`` objects.

    nltk's ``synsets`` lemmatizes the word (``_morphy``, with its exception lists), finds
    the synset offsets in its index and parses each synset's whole data line (pointers,
    frames, gloss) through a pure-Python seekable stream. METEOR needs only the lemma
    names, so this keeps nltk's lemmatization and index and reads the names from the
    data line with a plain file handle (same marker stripping as nltk). Equal to nltk on
    every WordNet 3.0 lemma (tests/test_metrics.py checks a sample). A zipped nltk corpus
    (no plain files to seek in) falls back to nltk's own ``synsets``.
    """

    POS = ("n", "v", "a", "r")  # nltk's POS_LIST order

    def __init__(self, reader) -> None:
        self.reader = reader
        root = getattr(getattr(reader, "_root", None), "path", None)
        self.root = root if root and os.path.isfile(os.path.join(root, "data.noun")) else None
        self._files: dict[str, Any] = {}
        self._names: dict[tuple[str, int], tuple[str, ...]] = {}

    def _synset_names(self, pos: str, offset: int) -> tuple[str, ...]:
        key = (pos, offset)
        names = self._names.get(key)
        if names is None:
            f = self._files.get(pos)
            if f is None:
                f = self._files[pos] = open(os.path.join(self.root, _POS_FILES[pos]), "rb")
            f.seek(offset)
            line = f.readline().decode("utf-8")
            fields = line.split("|", 1)[0].split()
            if int(fields[0]) != offset:
                raise WordNetMissingError(f"WordNet {_POS_FILES[pos]}: no synset at offset {offset}; the files are damaged, "
                                          "reinstall WordNet (python -m nltk.downloader wordnet)")
            n = int(fields[3], 16)
            names = self._names[key] = tuple(_MARKER.match(fields[4 + 2 * k]).group(1) for k in range(n))
        return names

    def __call__(self, word: str) -> set[str]:
        if self.root is None:
            return {lemma.name() for synset in self.reader.synsets(word) for lemma in synset.lemmas()}
        word = word.lower()
        index = self.reader._lemma_pos_offset_map
        out: set[str] = set()
        for pos in self.POS:
            for form in self.reader._morphy(word, pos, True):
                for offset in index.get(form, {}).get(pos, ()):
                    out.update(self._synset_names(pos, offset))
        return out

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
