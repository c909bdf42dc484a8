"""The words generation never prints: slurs, explicit sexual terms, strong profanity, in every form.

Why it exists: the bundled model was trained on raw Reddit comments, and a course shows
its samples to a classroom. Rather than edit the training text (which would teach the
model a world without these words, and hide what real data looks like), the words stay
in the vocabulary and are masked at sampling time, exactly like UNKNOWN_TOKEN: their
probability is set to 0 and the rest renormalised, so they are never drawn.

Where the list comes from: it is rnnlm's own (MIT, like the rest of rnnlm), written by
hand for this package. No maintained package fits: better-profanity 0.7.0 (MIT, its
last release in 2020) ships 916 entries that include identity terms ("gay", "homo") and
everyday words ("god", "fat", "drunk", "hiv"), which a course would not want masked, and the
others on PyPI are machine-learned classifiers (alt-profanity-check, with scikit-learn) or
need spaCy. better-profanity's list was the checklist this list was reviewed against.

How it matches (`is_blocked`): a token (lower case, as the word tokenizer makes it) is
listed when it is
- one of `STEMS` plus an inflection or a compound tail of `SUFFIXES` ("retard" -> "retarded",
  "slut" -> "slutty", "rape" -> "raping", "tranny" -> "trannies", "dick" -> "dickhead"), or
- holds one of `INFIXES` anywhere ("bullshit", "motherfucker", "shitty"),
unless it is one of the innocent words in `ALLOWED` ("cumin", "spicy", "cocky").

The trade-off, stated plainly: English only; misspellings, spaced-out or starred spellings
and other languages get through, and so do milder words on purpose (damn, hell, crap,
stupid, idiot, suck) and words of history and news (nazi, kill, drug). An innocent use of
a listed word is masked too ("sexes" in biology, "dick" as a name, "ass" the animal).
Character-level models spell words letter by letter and are not filtered.
`rnnlm generate --no-blocklist` (or `mask_blocklist=False`) turns the mask off.
tests/test_classroom.py checks the bundled model's vocabulary against this list and draws
1,000 sentences at temperatures 1 and 2 with none of its words in them.
"""

import functools

# Grouped by why a word is here. Each stem stands for its inflections (see `is_blocked`).
SLURS = frozenset("""
    nigger nigga faggot fag dyke tranny shemale retard tard spaz chink gook spic kike wetback
    raghead towelhead coon beaner paki jap wop dago golliwog sambo
""".split())
SEXUAL = frozenset("""
    porn porno pornography pornographic incest incestuous rape rapist cum cumshot jizz
    blowjob handjob dildo orgasm orgasmic masturbate masturbation horny boob tit titty cock
    cocksucker pussy whore slut anal erection boner hentai nsfw sex sexual sexually sexy
    penis vagina clit clitoris semen ejaculate ejaculation orgy milf bdsm bukkake gangbang
    fellatio cunnilingus deepthroat erotic erotica
""".split())
PROFANITY = frozenset("""
    bitch bastard ass asshole arse arsehole dick twat wank wanker bollocks prick douche
    douchebag jackass dumbass
""".split())
STEMS = SLURS | SEXUAL | PROFANITY
# Held anywhere in a token: every word made with these is strong profanity or a slur.
INFIXES = ("fuck", "shit", "cunt", "nigg")
# Inflections and the compound tails insults take ("dickhead", "asshat", "douchebag").
SUFFIXES = ("", "s", "es", "ed", "d", "ing", "in", "er", "ers", "y", "ies", "ied", "ier", "iest", "ish",
            "head", "heads", "face", "faces", "hole", "holes", "hat", "hats", "bag", "bags", "wad", "wads")
# Innocent words the rules above would catch.
ALLOWED = frozenset("""
    cumin spicy spicier spiciest spiced spices spicing cocky cockier cocked cocking cocker cockers
    pricked pricking pricker prickers tardy tardier tardies titer titers titin japes scunthorpe
    niggle niggles niggled niggling niggly niggard niggardly analy
""".split())
# The whole list written out for a reader (a sample, not what matching uses): the stems and infixes.
BLOCKLIST = STEMS | frozenset(INFIXES)


def _stems_of(word, suffix):
    """What `word` minus `suffix` may be the inflection of: as is, with the e or y it dropped,
    or with a doubled last letter undone ("cumming" -> "cum", "titties" -> "tit")."""
    base = word[:len(word) - len(suffix)]
    yield base
    if suffix[:1] in ("e", "i", "y"):  # a vowel: rape -> raping, tranny -> trannies, slut -> slutty
        yield base + "e"
        if suffix[:1] == "i" and suffix not in ("ing", "in", "ish"):
            yield base + "y"
        if len(base) > 2 and base[-1] == base[-2]:
            yield base[:-1]


def is_blocked(token):
    """True when `token` (any case) is a listed word in one of its forms (see the module docstring)."""
    word = token.lower()
    if word in ALLOWED:
        return False
    if any(infix in word for infix in INFIXES):
        return True
    return any(word.endswith(suffix) and any(stem in STEMS for stem in _stems_of(word, suffix))
               for suffix in SUFFIXES if len(word) > len(suffix))


# is_blocked for the words of a vocabulary, remembered: generation asks for a vocabulary's blocked ids once per
# sentence, and matching costs ~17 us a word (`rnnlm generate -n 1000` with the bundled model's 2,000 words: ~7 s)
_word_is_blocked = functools.lru_cache(maxsize=2 ** 17)(is_blocked)


def blocked_ids(vocabulary):
    """The ids of `vocabulary`'s words that are on the list, sorted: what generation masks."""
    return sorted(i for word, i in vocabulary.word_to_index.items() if _word_is_blocked(word))
