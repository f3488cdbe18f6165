"""Recognised words cut into sentences (pipeline/sentences.py): by punctuation, and by the pauses an unpunctuated
run of Whisper output still shows in its word times."""

from __future__ import annotations

from longwatch.pipeline.sentences import sentences
from longwatch.pipeline.speech import Word


def timed(spec: str) -> list[Word]:
    """Words from "text@t0-t1 ..." (seconds)."""
    out = []
    for item in spec.split():
        text, span = item.rsplit("@", 1)
        t0, t1 = span.split("-")
        out.append(Word(float(t0), float(t1), text.replace("_", " "), 0.9))
    return out


def texts(words: list[Word]) -> list[str]:
    return [" ".join(w.text for w in s) for s in sentences(words)]


def test_punctuation_ends_sentences_and_a_decimal_point_does_not():
    words = timed("It@0-0.2 costs@0.2-0.5 3.@0.5-0.7 5@0.7-0.8 million.@0.8-1.2 Next@1.3-1.5 slide.@1.5-1.9")
    assert texts(words) == ["It costs 3. 5 million.", "Next slide."]


def test_an_unpunctuated_run_is_split_where_the_silence_went():
    # Whisper's words of a 26 s window it returned without a full stop (seed 41's lecture): the pause before a
    # sentence is a gap, or is swallowed into a capitalised first word or into the word before it.
    words = timed("Now@452.70-453.30 let@453.30-453.54 us@453.54-453.80 join@453.80-454.16 the@454.16-454.36 "
                  "robot@454.36-454.70 arms@454.70-455.42 Small@457.28-458.38 changes@458.38-458.82 "
                  "in@458.82-459.14 joints@459.14-459.56 can't@459.56-459.94 have@459.94-460.20 large@460.20-460.40 "
                  "effects@460.40-461.24 The@462.58-463.46 key@463.46-463.66 idea@463.66-464.00 is@464.00-464.22 "
                  "that@464.22-464.52 joints@464.52-464.94 depend@464.94-465.44 on@465.44-465.86 "
                  "motors@465.86-466.38 The@466.38-468.54 most@468.54-468.92 project@468.92-469.42 "
                  "wins@469.42-469.84 a@469.84-470.12 camera@470.12-470.74 Let@470.74-472.18 me@472.18-472.42 "
                  "give@472.42-472.68 you@472.68-472.82 an@472.82-472.94 intuition@472.94-473.38 for@473.38-473.90 "
                  "grippers@473.90-475.28 A@475.28-475.84 common@475.84-476.08 mistake@476.08-476.50")
    assert texts(words) == ["Now let us join the robot arms", "Small changes in joints can't have large effects",
                            "The key idea is that joints depend on motors", "The most project wins a camera",
                            "Let me give you an intuition for grippers", "A common mistake"]


def test_names_and_i_at_speaking_pace_stay_in_their_sentence():
    words = timed("The@0-0.12 guest@0.12-0.4 speaker@0.4-0.8 is@0.85-0.95 Sarah@1.0-1.3 Hughes@1.3-1.7 and@1.72-1.9 "
                  "I@1.92-2.0 think@2.0-2.3 Maple_Street@2.35-2.9 is@2.9-3.0 close.@3.0-3.5")
    assert texts(words) == ["The guest speaker is Sarah Hughes and I think Maple Street is close."]


def test_a_name_that_ends_its_sentence_keeps_the_silence_after_it():
    # Seed 34's lecture: "Key." aligned over 1.3 s, the pause after the sentence, not before the word.
    words = timed("The@1332.80-1332.86 reference@1332.86-1333.16 book@1333.16-1333.40 is@1333.40-1333.68 "
                  "called@1333.68-1334.00 the@1334.00-1334.24 Copper@1334.24-1334.50 Key.@1334.50-1335.80")
    assert texts(words) == ["The reference book is called the Copper Key."]


def test_a_long_silence_ends_a_sentence_whatever_follows():
    words = timed("so@0-0.3 that@0.3-0.6 was@0.6-0.8 it@0.8-1.0 and@2.2-2.4 now@2.4-2.7 questions@2.7-3.3")
    assert texts(words) == ["so that was it", "and now questions"]
