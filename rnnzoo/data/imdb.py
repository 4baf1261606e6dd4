"""IMDB Large Movie Review Dataset v1.0 (Maas et al. 2011, ACL-HLT): raw reviews to Keras-style arrays.

The Keras examples read `imdb.npz`, reviews already turned into word indices by a tokenizer nobody
published. Here the raw reviews are read and indexed the way `keras.datasets.imdb.load_data` describes:

* a word's index is its rank in the Keras word index (`imdb_word_index.json`, 88,584 words, "the" = 1)
  plus `index_from` (3); 0 is padding, 1 the start token put in front of every review, 2 "out of
  vocabulary": a word with index >= `num_words`, or one the word index does not have;
* `pad_sequences` defaults: zeros in front, and a long review keeps its END (the start token and the
  first words are cut);
* train and test are shuffled with a fixed seed (113, Keras' default).

The normaliser (`normalize` + `tokenize`, version `NORMALISER_VERSION`) is the one place that turns text
into words, used by training and by `rnnzoo predict` alike. It lower-cases; turns the `<br />` line breaks
of the raw reviews into spaces; maps typographic apostrophes (’ ‘ ´ `) to ';
and takes words as runs of letters and digits, keeping apostrophes inside a word ("don't", "o'brien",
"rock'n'roll" are words of the index) but not at its edges, so quotes and all other punctuation only
separate words. This matches how the word index itself was built (Keras' `text_to_word_sequence`
filters: punctuation except the apostrophe becomes a space): all but 0.012% of the 5.8 million words of
the training reviews are found in it (1% of the test reviews' words are not: the index was evidently
built from the training reviews). Two deliberate differences: the index's rank-7 word "br" (the markup left in by
the Keras tokenizer) never occurs here, since a typed review has no markup; and a word with a leading or
trailing apostrophe ("'the") is looked up without it.

Reading the 50,000 reviews is one pass over the gzipped tar (about 3 s), then tokenizing them (about 8 s),
each with a progress bar on a terminal. The result is cached as word RANKS (not indices) of the full
reviews, so `num_words`, `index_from` and `maxlen` can change without reading the archive again; the
cache file's name carries the normaliser version and a digest of the archive's checked content and of
the word index.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnzoo.data.cache import DataError, Dataset, Resource, dataset_dir, iter_members, progress_bar, require
from rnnzoo.files import write_atomically

ARCHIVE = "aclImdb_v1.tar.gz"
WORD_INDEX = "imdb_word_index.json"
WORD_INDEX_SHA256 = "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6"

# The labelled reviews, checked member by member: the canonical archive also holds 50,000 unlabelled
# reviews (train/unsup) and bag-of-words files that a mirror may leave out, so only these four folders
# count. Digests computed with `cache.member_set_digest` from the canonical aclImdb_v1.tar.gz.
REVIEW_SETS = {
    "aclImdb/train/pos/*.txt": "eda3460052297f3a4b1637a14f0f60fecc55416341e320a3a58b98c45cc894db",
    "aclImdb/train/neg/*.txt": "577fded83d6de8c04b2afdc9c18b4127452612d115630dfdf55433d232c6f334",
    "aclImdb/test/pos/*.txt": "4eaa00a96e1242ecda630c7170c67148d16b7fffa12e2df4b8cdf6e131d897e4",
    "aclImdb/test/neg/*.txt": "cca5e2d46b14ab68de8d6bcb86ea6b1ce9fd205b5af84a7a2686cb6691fe8da4",
}

DATASET = Dataset(
    name="imdb",
    description="IMDB Large Movie Review Dataset v1.0 (raw reviews) and the Keras word index",
    resources=(
        Resource(
            filename=ARCHIVE,
            urls=("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
            member_sets=REVIEW_SETS,
            aliases=("aclImdb_v1_labeled.tar.gz",),
        ),
        Resource(
            filename=WORD_INDEX,
            urls=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb_word_index.json",),
            sha256=WORD_INDEX_SHA256,
            md5="bfafd718b763782e994055a2d397834f",  # the file_hash Keras' get_word_index() checks
        ),
    ),
)

PAD, START, OOV = 0, 1, 2  # Keras' padding value, start_char and oov_char
INDEX_FROM = 3  # Keras' default: word of rank r gets index r + 3
SHUFFLE_SEED = 113  # Keras' default seed of imdb.load_data
SPLITS = ("train", "test")

# --- the normaliser: text -> words (training and prediction) ---------------------------------------------

NORMALISER_VERSION = 1  # bump when normalize/tokenize change: it renames the cache and is saved in runs
_LINE_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00b4": "'", "`": "'"})
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters/digits, apostrophes only between them


def normalize(text: str) -> str:
    """Lower case, `<br />` line breaks as spaces, one kind of apostrophe. Idempotent: breaks are removed
    until none is left, since removing one can join its neighbours into another ("<<br />br />")."""
    count = 1
    while count:
        text, count = _LINE_BREAK.subn(" ", text)
    return text.lower().translate(_APOSTROPHES)


def tokenize(text: str) -> list[str]:
    """The words of a review: "It's <br />GREAT--isn't it?" -> ["it's", "great", "isn't", "it"]."""
    return _WORD.findall(normalize(text))


# --- word index ------------------------------------------------------------------------------------------


def load_word_index(path: Path | None = None) -> dict[str, int]:
    """{word: rank}, rank 1 the most frequent word (the Keras word index unless `path` is given)."""
    path = Path(path) if path is not None else require(DATASET, WORD_INDEX)
    try:
        index = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"cannot read the word index {path}: {e}") from e
    if not isinstance(index, dict) or not all(isinstance(r, int) and r > 0 for r in index.values()):
        raise DataError(f"{path} is not a word index: expected a JSON object of word -> rank (1, 2, ...)")
    return index


def build_word_index(texts: Iterable[str]) -> dict[str, int]:
    """A word index of `texts` like Keras': rank 1 the most frequent word (ties alphabetical)."""
    counts = Counter(w for text in texts for w in tokenize(text))
    ordered = sorted(counts, key=lambda w: (-counts[w], w))
    return {w: rank for rank, w in enumerate(ordered, start=1)}


def vocabulary(word_index: dict[str, int], num_words: int, index_from: int = INDEX_FROM) -> list[str]:
    """The words that keep their own index under `num_words`, most frequent first: word k of the list has
    rank k + 1 and index k + 1 + index_from (saved with a run, so predict needs no word index file)."""
    by_rank = sorted(word_index, key=word_index.__getitem__)
    return [w for w in by_rank if word_index[w] + index_from < num_words]


def check_sizes(num_words: int, index_from: int) -> None:
    if index_from < OOV + 1:
        raise DataError(f"index_from must be at least {OOV + 1} (0, 1, 2 are padding, start and "
                        f"out-of-vocabulary), got {index_from}")
    if num_words <= index_from + 1:
        raise DataError(f"num_words must be more than index_from + 1 = {index_from + 1} to keep any word, "
                        f"got {num_words}")


# --- reviews as word ranks -------------------------------------------------------------------------------


@dataclass
class RankedReviews:
    """Reviews as word ranks (0: a word the word index lacks), stored back to back."""

    ranks: np.ndarray  # (total words,) int32
    offsets: np.ndarray  # (N + 1,) int64: review i is ranks[offsets[i]:offsets[i + 1]]
    labels: np.ndarray  # (N,) int8, 1 = positive (rating 7-10), 0 = negative (1-4)
    ratings: np.ndarray  # (N,) int8, the star rating from the file name (0 for generated reviews)
    ids: np.ndarray  # (N,) int32, the review id from the file name

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def review(self, i: int) -> np.ndarray:
        return self.ranks[self.offsets[i]:self.offsets[i + 1]]

    def take(self, index: np.ndarray) -> RankedReviews:
        """The reviews at `index`, in that order (shuffling, subsets)."""
        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = self.offsets[index]
        # position j of the output comes from starts[review] + (j - offsets[review])
        gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return RankedReviews(self.ranks[gather], offsets, self.labels[index], self.ratings[index],
                             self.ids[index])


def rank_reviews(texts: Sequence[str], labels: Sequence[int], word_index: dict[str, int],
                 ratings: Sequence[int] | None = None, ids: Sequence[int] | None = None,
                 desc: str = "tokenizing reviews") -> RankedReviews:
    """Tokenize each text and look its words up in `word_index` (a progress bar `desc` on a terminal: the
    25,000 reviews of a split take seconds)."""
    lookup = word_index.get
    sequences = [np.fromiter((lookup(w, 0) for w in tokenize(t)), dtype=np.int32)
                 for t in progress_bar(texts, desc=desc, total=len(texts))]
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in sequences], out=offsets[1:])
    ranks = np.concatenate(sequences) if sequences else np.zeros(0, dtype=np.int32)
    n = len(sequences)
    return RankedReviews(
        ranks.astype(np.int32), offsets, np.asarray(labels, dtype=np.int8),
        np.asarray(ratings if ratings is not None else [0] * n, dtype=np.int8),
        np.asarray(ids if ids is not None else range(n), dtype=np.int32))


_MEMBER = re.compile(r"aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt")


def iter_reviews(archive: Path) -> Iterator[tuple[str, int, int, int, str]]:
    """(split, label, id, rating, text) of every labelled review, in archive order, in one pass."""
    for name, data in iter_members(archive, "aclImdb/*/[pn][oe][sg]/*.txt", desc="reading the IMDB reviews"):
        match = _MEMBER.fullmatch(name)
        if match is None:
            continue  # not a review file (the pattern is only a prefilter)
        split, polarity, review_id, rating = match.groups()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{archive}: review {name} is not UTF-8 text ({e}); the archive is not the "
                            f"original, run `rnnzoo data fetch {DATASET.name}`") from None
        yield split, int(polarity == "pos"), int(review_id), int(rating), text


def read_archive(archive: Path, word_index: dict[str, int]) -> dict[str, RankedReviews]:
    """Both splits of the archive as word ranks, each sorted by (label, id) whatever the archive's order."""
    columns: dict[str, tuple[list[str], list[int], list[int], list[int]]] = {s: ([], [], [], []) for s in SPLITS}
    for split, label, review_id, rating, text in iter_reviews(archive):
        texts, labels, ratings, ids = columns[split]
        texts.append(text)
        labels.append(label)
        ratings.append(rating)
        ids.append(review_id)
    result = {}
    for split, (texts, labels, ratings, ids) in columns.items():
        if not texts:
            raise DataError(f"{archive} holds no {split} reviews (aclImdb/{split}/pos|neg/<id>_<rating>.txt)")
        order = sorted(range(len(texts)), key=lambda i: (labels[i], ids[i]))
        result[split] = rank_reviews([texts[i] for i in order], [labels[i] for i in order], word_index,
                                     [ratings[i] for i in order], [ids[i] for i in order],
                                     desc=f"tokenizing the {split} reviews")
    return result


def cache_path() -> Path:
    """Where the ranked reviews are cached; the name changes with anything that changes the content."""
    facts = json.dumps({"normaliser": NORMALISER_VERSION, "reviews": REVIEW_SETS, "word_index": WORD_INDEX_SHA256},
                       sort_keys=True)
    digest = hashlib.sha256(facts.encode()).hexdigest()[:12]
    return dataset_dir(DATASET) / f"ranked-reviews-normaliser{NORMALISER_VERSION}-{digest}.npz"


_FIELDS = ("ranks", "offsets", "labels", "ratings", "ids")


def _save(path: Path, splits: dict[str, RankedReviews]) -> None:
    """Write atomically: an interrupted run leaves no half-written cache behind."""
    arrays = {f"{s}_{k}": getattr(r, k) for s, r in splits.items() for k in _FIELDS}
    try:
        write_atomically(path, lambda tmp: np.savez(tmp, **arrays))
    except OSError:
        pass  # a read-only cache still works: the archive is read again next time


def _load(path: Path) -> dict[str, RankedReviews] | None:
    try:
        with np.load(path) as z:
            return {s: RankedReviews(*(z[f"{s}_{k}"] for k in _FIELDS)) for s in SPLITS}
    except (OSError, ValueError, KeyError, EOFError):  # missing or damaged: rebuilt by the caller
        return None


def load_ranked() -> dict[str, RankedReviews]:
    """{"train", "test"}: the 25,000 + 25,000 labelled reviews as word ranks (cached after the first call)."""
    path = cache_path()
    cached = _load(path) if path.exists() else None
    if cached is not None:
        return cached
    archive = require(DATASET, ARCHIVE)
    word_index = load_word_index()
    splits = read_archive(archive, word_index)
    _save(path, splits)
    return splits


def shuffled(reviews: RankedReviews, seed: int = SHUFFLE_SEED) -> RankedReviews:
    return reviews.take(np.random.default_rng(seed).permutation(len(reviews)))


# --- ranks -> Keras indices -> padded arrays -------------------------------------------------------------


def to_indices(ranks: np.ndarray, num_words: int, index_from: int = INDEX_FROM) -> np.ndarray:
    """Word ranks to Keras indices: rank + index_from, or OOV (unknown word, or index >= num_words)."""
    check_sizes(num_words, index_from)
    indices = ranks.astype(np.int64) + index_from
    indices[(ranks <= 0) | (indices >= num_words)] = OOV
    return indices


def pad_front(sequence: np.ndarray, maxlen: int) -> np.ndarray:
    """[START, *sequence], padded with zeros in front or cut to its last `maxlen` entries (Keras' defaults)."""
    row = np.zeros(maxlen, dtype=np.int64)
    full = len(sequence) + 1
    if full <= maxlen:
        row[maxlen - full] = START
        row[maxlen - full + 1:] = sequence
    else:
        row[:] = sequence[full - 1 - maxlen:]
    return row


def vectorize(reviews: RankedReviews, num_words: int, maxlen: int, index_from: int = INDEX_FROM) -> np.ndarray:
    """(N, maxlen) int64: `imdb.load_data(num_words, index_from=...)` then `pad_sequences(maxlen=...)`."""
    if maxlen < 1:
        raise DataError(f"maxlen must be at least 1, got {maxlen}")
    indices = to_indices(reviews.ranks, num_words, index_from)
    out = np.zeros((len(reviews), maxlen), dtype=np.int64)
    for i in range(len(reviews)):
        out[i] = pad_front(indices[reviews.offsets[i]:reviews.offsets[i + 1]], maxlen)
    return out


@dataclass
class Encoded:
    """One typed review as the model sees it, and what it lost on the way."""

    indices: np.ndarray  # (maxlen,) int64
    words: list[str]  # every word of the review
    kept: list[str]  # the words inside the window (the last maxlen)
    truncated: list[str]  # the words cut from the front
    oov: list[str]  # kept words outside the vocabulary, each once, in order


def word_indices(vocab: Sequence[str], index_from: int = INDEX_FROM) -> dict[str, int]:
    """{word: index} of a vocabulary saved in a run (see `vocabulary`)."""
    return {w: k + 1 + index_from for k, w in enumerate(vocab)}


def encode(text: str, indices: Mapping[str, int], maxlen: int) -> Encoded:
    """Index a typed review with `word_indices` of a run's vocabulary: the normaliser and the indices of
    training. Raises DataError for a review with no words."""
    words = tokenize(text)
    if not words:
        raise DataError("the review has no words" + (f": {text.strip()[:60]!r}" if text.strip() else ""))
    sequence = np.array([indices.get(w, OOV) for w in words], dtype=np.int64)
    cut = max(0, len(words) - maxlen)  # the start token goes first: a review of maxlen words already loses it
    kept = words[cut:]
    oov = list(dict.fromkeys(w for w in kept if w not in indices))
    return Encoded(pad_front(sequence, maxlen), words, kept, words[:cut], oov)


# --- a generated corpus (tests, offline demo) ------------------------------------------------------------

POSITIVE = ("great", "wonderful", "brilliant", "moving", "superb", "enjoyable", "beautiful", "loved")
NEGATIVE = ("awful", "boring", "terrible", "worst", "dull", "waste", "poor", "hated")
FILLER = ("the", "movie", "film", "plot", "actors", "story", "was", "is", "a", "and", "this", "it", "of",
          "acting", "i", "really", "quite", "ending", "scene", "director", "music", "it's", "don't", "very",
          "cast", "script", "watch", "characters", "time", "just")


def generate_reviews(n: int, rng: np.random.Generator) -> list[tuple[str, int]]:
    """`n` short (text, label) reviews, half positive: filler words with a few words of the label's
    sentiment, capitals, punctuation, `<br />` breaks and now and then a made-up word (out of vocabulary)."""
    reviews = []
    labels = rng.permutation(np.arange(n) % 2)
    for label in labels:
        sentiment = POSITIVE if label else NEGATIVE
        words = [FILLER[k] for k in rng.integers(len(FILLER), size=int(rng.integers(4, 25)))]
        for pos in rng.choice(len(words), size=min(len(words), int(rng.integers(1, 4))), replace=False):
            words[pos] = sentiment[rng.integers(len(sentiment))]
        if rng.random() < 0.3:
            words.insert(int(rng.integers(len(words) + 1)), f"zq{rng.integers(1000)}x")
        text = " ".join(words)
        text = text[0].upper() + text[1:] + rng.choice([".", "!", "...", ". <br /><br />Really."])
        reviews.append((text, int(label)))
    return reviews
