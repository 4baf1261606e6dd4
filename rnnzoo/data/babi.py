"""bAbI question answering (Weston et al. 2015, arXiv:1502.05698): reading, parsing and vectorizing.

The steps follow the Keras examples: `tokenize` -> `parse_stories` -> `get_stories` -> `vectorize_stories`.
Sentence-level memories (babi_memn2n) skip the flattening: `parse_stories` -> `vectorize_sentences`, one row
of word indices per sentence, the story's last `memory_size` sentences kept.
Also a small generator of QA1-style stories (people moving between places) for the offline demo and tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from rnnzoo.data.cache import DataError, Dataset, Resource, load_checksums, read_member, require

ARCHIVE = "babi_tasks_1-20_v1-2.tar.gz"
TASKS = {
    "qa1": "single-supporting-fact", "qa2": "two-supporting-facts", "qa3": "three-supporting-facts",
    "qa4": "two-arg-relations", "qa5": "three-arg-relations", "qa6": "yes-no-questions", "qa7": "counting",
    "qa8": "lists-sets", "qa9": "simple-negation", "qa10": "indefinite-knowledge",
    "qa11": "basic-coreference", "qa12": "conjunction", "qa13": "compound-coreference",
    "qa14": "time-reasoning", "qa15": "basic-deduction", "qa16": "basic-induction",
    "qa17": "positional-reasoning", "qa18": "size-reasoning", "qa19": "path-finding",
    "qa20": "agents-motivations",
}
SIZES = {"1k": "en", "10k": "en-10k"}

# Mirrors repack the archive (other folders, other compression), so what is verified is the content of
# the task files we read: their published sha256, not the archive's bytes.
DATASET = Dataset(
    name="babi",
    description="bAbI QA tasks v1.2, en (1k) and en-10k",
    resources=(
        Resource(
            filename=ARCHIVE,
            urls=(
                "https://s3.amazonaws.com/text-datasets/babi_tasks_1-20_v1-2.tar.gz",
                "http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz",
            ),
            members={p: d for p, d in load_checksums("babi.sha256").items() if "/en" in p},
            aliases=("tasks_1-20_v1-2.tar.gz", "tasks_1-20_v1-2_en_en-10k.tar.gz"),
        ),
    ),
)

Story = tuple[list[str], list[str], str]  # (story words, question words, answer)
SentenceStory = tuple[list[list[str]], list[str], str]  # (story sentences, question words, answer)

_TOKEN = re.compile(r"\w+|[^\w\s]")
_PUNCTUATION = re.compile(r"[^\w\s]")


def tokenize(sentence: str) -> list[str]:
    """Words and punctuation marks as separate tokens: 'Where is the apple?' -> [..., 'apple', '?']."""
    return _TOKEN.findall(sentence)


def parse_stories(lines: Iterable[str], only_supporting: bool = False, source: str = "<input>"
                  ) -> list[SentenceStory]:
    """Parse bAbI lines (`ID text`, or `ID question<TAB>answer<TAB>supporting ids`; IDs restart at 1 for a
    new story) into (sentences, question, answer). With only_supporting, keep only the supporting sentences.
    A malformed line raises DataError naming `source` and the line number."""
    data: list[SentenceStory] = []
    story: list[list[str]] = []
    seen_any = False
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        seen_any = True
        where = f"{source}, line {number}"
        head, _, text = line.partition(" ")
        if not (head.isascii() and head.isdigit()) or not text:  # '²' is a digit to isdigit(), not to int()
            raise DataError(f"{where}: expected 'ID text' with a numeric ID, got {line[:60]!r}")
        nid = int(head)
        if nid == 1:
            story = []
        if "\t" in text:
            fields = text.split("\t")
            if len(fields) != 3 or not fields[1].strip():
                raise DataError(f"{where}: a question line needs 3 tab-separated fields "
                                f"(question, answer, supporting ids), got {len(fields)}")
            question, answer, supporting = fields
            if only_supporting:
                ids = [int(i) for i in supporting.split() if i.isascii() and i.isdigit()]
                if not ids or len(ids) != len(supporting.split()) or not all(0 < i <= len(story) for i in ids):
                    raise DataError(f"{where}: bad supporting ids {supporting!r}: expected the IDs of earlier "
                                    f"lines of the story (1 to {len(story)}), separated by spaces")
                kept = [story[i - 1] for i in ids]
            else:
                kept = [s for s in story if s]
            data.append((kept, tokenize(question), answer.strip()))
            story.append([])  # question lines keep their ID slot so supporting ids stay aligned
        else:
            story.append(tokenize(text))
    if not seen_any:
        raise DataError(f"{source}: the file is empty")
    return data


def get_stories(lines: Iterable[str], only_supporting: bool = False, source: str = "<input>") -> list[Story]:
    """Each question becomes (all story words before it, question words, answer)."""
    return flatten(parse_stories(lines, only_supporting, source))


def story_ids(data: Sequence[Story] | Sequence[SentenceStory]) -> np.ndarray:
    """Which story each question comes from: a question whose story does not continue the previous question's
    starts a new one. (With only_supporting the stories do not grow, and each question counts as its own.)"""
    ids = np.zeros(len(data), dtype=np.int64)
    for k in range(1, len(data)):
        before, now = data[k - 1][0], data[k][0]
        ids[k] = ids[k - 1] + (len(now) < len(before) or now[:len(before)] != before)
    return ids


def build_vocab(*datasets: Sequence[Story]) -> list[str]:
    """Sorted vocabulary of stories, questions and answers; word i gets index i + 1 (0 is padding)."""
    words: set[str] = set()
    for data in datasets:
        for story, question, answer in data:
            words.update(story, question, [answer])
    return sorted(words)


def word_index(vocab: Sequence[str]) -> dict[str, int]:
    """{word: index} of a `build_vocab` vocabulary: word i gets index i + 1 (0 is padding)."""
    return {w: i + 1 for i, w in enumerate(vocab)}


def pad_sequences(sequences: Sequence[Sequence[int]], maxlen: int) -> np.ndarray:
    """Keras' defaults: zeros in front, and a too-long sequence keeps its tail."""
    out = np.zeros((len(sequences), maxlen), dtype=np.int64)
    for i, seq in enumerate(sequences):
        tail = list(seq)[-maxlen:] if maxlen else []
        if tail:
            out[i, -len(tail):] = tail
    return out


def flatten(data: Sequence[SentenceStory]) -> list[Story]:
    """The stories of `parse_stories` as `get_stories` gives them: all sentences' words in one list."""
    return [([w for sentence in story for w in sentence], q, a) for story, q, a in data]


def normalize(data: Sequence[SentenceStory], lowercase: bool, punctuation: bool) -> list[SentenceStory]:
    """The stories with their words lowercased and/or their punctuation marks dropped, as the End-To-End
    Memory Networks authors' code reads bAbI (so that 'Gertrude' of a story is 'gertrude' of a question)."""
    return [(kept_words(story, lowercase, punctuation), normal_words(q, lowercase, punctuation),
             answer.lower() if lowercase else answer) for story, q, answer in data]


def normal_words(words: Sequence[str], lowercase: bool, punctuation: bool) -> list[str]:
    """`words` lowercased (if `lowercase`), without punctuation marks (unless `punctuation`)."""
    return [w.lower() if lowercase else w for w in words if punctuation or not _PUNCTUATION.fullmatch(w)]


def kept_words(sentences: Sequence[Sequence[str]], lowercase: bool, punctuation: bool) -> list[list[str]]:
    """`normal_words` of each sentence, leaving out sentences with no words left."""
    return [words for s in sentences if (words := normal_words(s, lowercase, punctuation))]


def sentence_rows(sentences: Sequence[Sequence[str]], word_idx: dict[str, int], memory_size: int,
                  sentence_maxlen: int) -> np.ndarray:
    """(memory_size, sentence_maxlen) word indices of one story's last `memory_size` sentences, the newest in
    the last row, empty rows (zeros) in front; each sentence padded in front (a longer one keeps its tail)."""
    rows = np.zeros((memory_size, sentence_maxlen), dtype=np.int64)
    kept = list(sentences)[-memory_size:] if memory_size else []
    if kept:
        rows[memory_size - len(kept):] = pad_sequences([[word_idx[w] for w in s] for s in kept], sentence_maxlen)
    return rows


def vectorize_sentences(data: Sequence[SentenceStory], word_idx: dict[str, int], memory_size: int,
                        sentence_maxlen: int, query_maxlen: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stories (N, memory_size, sentence_maxlen), questions (N, query_maxlen), answers (N,)) as word indices.

    A story keeps its last `memory_size` sentences, as End-To-End Memory Networks do (the most recent 50);
    shorter stories are padded in front with empty sentences (all zeros), so the newest sentence is always
    the last row. Each sentence, and the question, is padded in front like `pad_sequences` (a longer one
    keeps its last words)."""
    stories = np.stack([sentence_rows(sentences, word_idx, memory_size, sentence_maxlen)
                        for sentences, _, _ in data]) if data else np.zeros((0, memory_size, sentence_maxlen),
                                                                             dtype=np.int64)
    queries = pad_sequences([[word_idx[w] for w in q] for _, q, _ in data], query_maxlen)
    answers = np.array([word_idx[a] for _, _, a in data], dtype=np.int64)
    return stories, queries, answers


def vectorize_stories(data: Sequence[Story], word_idx: dict[str, int], story_maxlen: int, query_maxlen: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stories (N, story_maxlen), questions (N, query_maxlen), answers (N,)) as word indices."""
    stories = pad_sequences([[word_idx[w] for w in s] for s, _, _ in data], story_maxlen)
    queries = pad_sequences([[word_idx[w] for w in q] for _, q, _ in data], query_maxlen)
    answers = np.array([word_idx[a] for _, _, a in data], dtype=np.int64)
    return stories, queries, answers


def member_path(task: str, size: str, split: str) -> str:
    if task not in TASKS:
        raise DataError(f"unknown bAbI task {task!r}; choose from qa1 to qa20")
    if size not in SIZES:
        raise DataError(f"unknown bAbI size {size!r}; choose from {', '.join(SIZES)}")
    return f"tasks_1-20_v1-2/{SIZES[size]}/{task}_{TASKS[task]}_{split}.txt"


def load_task(task: str = "qa1", size: str = "10k", only_supporting: bool = False
              ) -> tuple[list[Story], list[Story]]:
    """Train and test stories of one task, read from the cached (verified) archive."""
    train, test = load_task_sentences(task, size, only_supporting)
    return flatten(train), flatten(test)


def load_task_sentences(task: str = "qa1", size: str = "10k", only_supporting: bool = False
                        ) -> tuple[list[SentenceStory], list[SentenceStory]]:
    """Train and test stories of one task as sentences (`parse_stories`), from the cached (verified) archive."""
    archive = require(DATASET, ARCHIVE)
    splits = []
    for split in ("train", "test"):
        member = member_path(task, size, split)
        try:
            text = read_member(archive, member).decode("utf-8")
        except DataError as e:
            if (task, size, split) != ("qa3", "10k", "train"):
                raise
            raise DataError(f"{e} (some copies lack the en-10k QA3 training file: try --size 1k)") from None
        splits.append(parse_stories(text.splitlines(), only_supporting, source=member))
    return splits[0], splits[1]


# --- a generator of QA1-style tasks (offline demo and tests) -------------------------------------------

PEOPLE = ("Mary", "John", "Sandra", "Daniel")
PLACES = ("bathroom", "hallway", "garden", "office", "bedroom", "kitchen")
VERBS = ("moved to", "went to", "journeyed to", "travelled to", "went back to")


def generate_qa1_lines(n_stories: int, rng: np.random.Generator, questions_per_story: int = 5) -> list[str]:
    """bAbI-format lines of single-supporting-fact stories: two moves, then 'Where is X?', repeated."""
    lines: list[str] = []
    for _ in range(n_stories):
        where: dict[str, tuple[str, int]] = {}
        nid = 0
        for _ in range(questions_per_story):
            for _ in range(2):
                nid += 1
                person, place = PEOPLE[rng.integers(len(PEOPLE))], PLACES[rng.integers(len(PLACES))]
                lines.append(f"{nid} {person} {VERBS[rng.integers(len(VERBS))]} the {place}.")
                where[person] = (place, nid)
            person = list(where)[rng.integers(len(where))]
            place, support = where[person]
            nid += 1
            lines.append(f"{nid} Where is {person}? \t{place}\t{support}")
    return lines
