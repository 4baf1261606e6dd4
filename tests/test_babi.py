"""bAbI pipeline: tokenizing, parsing, vectorizing, errors, the generator, and the real-data facts."""

from __future__ import annotations

import numpy as np
import pytest

from rnnzoo.data import babi
from rnnzoo.data.cache import DataError
from rnnzoo.specs import get_example

LINES = [
    "1 Mary moved to the bathroom.",
    "2 John went to the hallway.",
    "3 Where is Mary? \tbathroom\t1",
    "4 Daniel went back to the hallway.",
    "5 Where is Daniel? \thallway\t4",
    "1 Sandra journeyed to the garden.",
    "2 Where is Sandra? \tgarden\t1",
]


def test_tokenize_keeps_words_and_punctuation_apart() -> None:
    assert babi.tokenize("Bob dropped the apple. Where is the apple?") == [
        "Bob", "dropped", "the", "apple", ".", "Where", "is", "the", "apple", "?"]


def test_parse_stories_and_get_stories() -> None:
    stories = babi.get_stories(LINES)
    assert stories[0] == (["Mary", "moved", "to", "the", "bathroom", ".", "John", "went", "to", "the",
                           "hallway", "."], ["Where", "is", "Mary", "?"], "bathroom")
    assert len(stories[1][0]) == 12 + 7  # the question line in between adds no words
    assert stories[2] == (["Sandra", "journeyed", "to", "the", "garden", "."], ["Where", "is", "Sandra", "?"],
                          "garden")  # ID 1 starts a new story


def test_only_supporting_keeps_the_supporting_sentences() -> None:
    parsed = babi.parse_stories(LINES, only_supporting=True)
    assert parsed[1][0] == [["Daniel", "went", "back", "to", "the", "hallway", "."]]


@pytest.mark.parametrize("lines, message", [
    (["x Mary moved to the bathroom."], "line 1"),
    (["1 Mary moved.", "2 Where is Mary?\tbathroom"], "line 2"),
    (["1 Mary moved.", "2 Where is Mary?\tbathroom\t7"], "supporting"),
    (["1 Mary moved.", "2 Where is Mary?\tbathroom\t0"], r"supporting ids '0': .* \(1 to 1\)"),  # not story[-1]
    (["1 Mary moved.", "2 John moved.", "3 Where is Mary?\tbathroom\t-1"], "supporting ids '-1'"),
    (["1 Mary moved.", "2 Where is Mary?\tbathroom\t1 x"], "supporting ids '1 x'"),
    (["1 Mary moved.", "2 Where is Mary?\tbathroom\t"], "supporting ids ''"),
    (["1 Mary moved.", "\u00b2 Where is Mary?\tbathroom\t1"], "line 2: expected 'ID text' with a numeric ID"),
    ([], "empty"),
])
def test_malformed_input_names_file_and_line(lines: list[str], message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        babi.parse_stories(lines, only_supporting=True, source="qa_test.txt")
    assert "qa_test.txt" in str(info.value)


def test_vectorize_pads_in_front_and_indexes_from_one() -> None:
    data = babi.get_stories(LINES)
    vocab = babi.build_vocab(data)
    assert vocab == sorted(vocab) and vocab[:2] == [".", "?"]
    word_idx = {w: i + 1 for i, w in enumerate(vocab)}
    s, q, a = babi.vectorize_stories(data, word_idx, story_maxlen=20, query_maxlen=5)
    assert s.shape == (3, 20) and q.shape == (3, 5) and a.shape == (3,)
    assert s[2, :14].tolist() == [0] * 14 and s[2, -1] == word_idx["."]
    assert q[0].tolist() == [0] + [word_idx[w] for w in ["Where", "is", "Mary", "?"]]
    assert a[0] == word_idx["bathroom"]


def test_pad_sequences_keeps_the_tail() -> None:
    assert babi.pad_sequences([[1, 2, 3, 4], [5]], 3).tolist() == [[2, 3, 4], [0, 0, 5]]


def test_generator_is_seeded_and_parses() -> None:
    a = babi.generate_qa1_lines(10, np.random.default_rng(3))
    assert a == babi.generate_qa1_lines(10, np.random.default_rng(3))
    stories = babi.get_stories(a, only_supporting=False)
    assert len(stories) == 50
    for story, question, answer in stories:
        person = question[2]
        last = max(i for i, w in enumerate(story) if w == person)  # the answer is the person's last place
        end = story.index(".", last)
        assert story[end - 1] == answer


def test_validation_holds_out_whole_stories() -> None:
    import torch

    from rnnzoo.specs.base import Split, carve_validation

    stories = babi.get_stories(babi.generate_qa1_lines(40, np.random.default_rng(0)))  # 5 questions a story
    ids = babi.story_ids(stories)
    assert ids.tolist() == [k // 5 for k in range(200)]
    # tag each question with its index, then check that no story has questions on both sides
    split = Split((torch.arange(200),), torch.arange(200))
    train, val = carve_validation(split, 0.1, seed=1, groups=torch.from_numpy(ids))
    train_stories, val_stories = set(ids[train.target.numpy()]), set(ids[val.target.numpy()])
    assert len(val_stories) == 4 and len(val) == 20 and not train_stories & val_stories
    assert sorted(train.target.tolist() + val.target.tolist()) == list(range(200))
    # without groups: the same questions as before groups existed (a random 10% of examples)
    plain_train, plain_val = carve_validation(split, 0.1, seed=1)
    order = torch.randperm(200, generator=torch.Generator().manual_seed(1))
    assert plain_val.target.tolist() == order[:20].sort().values.tolist() and len(plain_train) == 180


def test_example_data_is_indexed_and_padded_like_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    # The offline counterpart of the real-data facts below, on generated stories; the test stories are
    # made longer than the training ones, so the story length must come from both, as in the original.
    made: list[list[str]] = []
    generate = babi.generate_qa1_lines

    def longer_test_stories(n: int, rng: np.random.Generator, questions_per_story: int = 5) -> list[str]:
        made.append(generate(n, rng, questions_per_story + 3 * len(made)))
        return made[-1]

    monkeypatch.setattr(babi, "generate_qa1_lines", longer_test_stories)
    example = get_example("babi_memnn")
    data = example.load_data(example.config("tiny", generated_stories=60), seed=0)
    vocab, S, Q = data.meta["vocab"], data.meta["story_maxlen"], data.meta["query_maxlen"]
    assert vocab == sorted(vocab) and vocab[0] == "."  # index 0 is padding, "." is index 1
    splits = (data.train, data.val, data.test)
    stories = np.concatenate([split.inputs[0].numpy() for split in splits])
    questions = np.concatenate([split.inputs[1].numpy() for split in splits])
    assert stories.shape[1] == S and questions.shape[1] == Q
    assert (stories[:, -1] == 1).all()  # every story ends with "."
    assert questions[:, -1].tolist() == [vocab.index("?") + 1] * len(questions)
    lengths = (stories != 0).sum(axis=1)
    assert S == max(len(story) for lines in made for story, _, _ in babi.get_stories(lines)) == lengths.max()
    for row, n in zip(stories, lengths):  # padding in front only
        assert (row[:S - n] == 0).all() and (row[S - n:] != 0).all()
    answers = np.concatenate([split.target.numpy() for split in splits])
    assert {vocab[a - 1] for a in answers} <= set(babi.PLACES)


def test_unknown_task_and_size_are_clear_errors() -> None:
    with pytest.raises(DataError, match="qa1 to qa20"):
        babi.member_path("qa21", "10k", "train")
    with pytest.raises(DataError, match="1k, 10k"):
        babi.member_path("qa1", "5k", "train")


def test_real_qa1_10k_facts(real_data) -> None:
    train, test = babi.load_task("qa1", "10k")
    assert (len(train), len(test)) == (10_000, 1_000)
    vocab = babi.build_vocab(train, test)
    assert len(vocab) + 1 == 22
    data = get_example("babi_memnn").load_data(get_example("babi_memnn").config(), seed=0)
    assert (data.meta["story_maxlen"], data.meta["query_maxlen"]) == (68, 4)
    questions = data.test.inputs[1]
    assert (questions[:, [0, 1, 3]] == torch_tensor([7, 13, 2])).all()
    stories = data.test.inputs[0]
    assert (stories[:, -1] == 1).all() and (stories[:, -3] == 18).all()
    assert len(data.train) + len(data.val) == 10_000 and len(data.val) == 500
    # the sizes `bench` and `summary` use without reading the data are the real ones
    meta = get_example("babi_memnn").shape_meta(get_example("babi_memnn").config())
    assert (meta["story_maxlen"], meta["query_maxlen"], len(meta["vocab"])) == (68, 4, 21)


def torch_tensor(values: list[int]):
    import torch

    return torch.tensor(values)


def test_real_qa2_10k_facts(real_data) -> None:
    example = get_example("babi_rnn")
    data = example.load_data(example.config(), seed=0)
    assert (data.meta["story_maxlen"], data.meta["query_maxlen"], len(data.meta["vocab"]) + 1) == (552, 5, 36)
    meta = example.shape_meta(example.config())
    assert (meta["story_maxlen"], meta["query_maxlen"], len(meta["vocab"])) == (552, 5, 35)


def test_missing_qa3_10k_train_file_is_a_clear_error(real_data) -> None:
    with pytest.raises(DataError, match="qa3"):
        babi.load_task("qa3", "10k")
