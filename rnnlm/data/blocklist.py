"""A short list of words generation never prints: slurs, explicit sexual terms, the strongest profanity.

Why it exists: the bundled model was trained on raw Reddit comments, and a course shows
its samples to a classroom. Rather than edit the training text (which would teach the
model a world without these words, and hide what real data looks like), the words stay
in the vocabulary and are masked at sampling time, exactly like UNKNOWN_TOKEN: their
probability is set to 0 and the rest renormalised, so they are never drawn.

The trade-off, stated plainly: the list is short and English-only, matched on whole
word tokens (lower case, as the word tokenizer produces them), so misspellings,
compounds and other languages get through, and an innocent use of a listed word is
masked too. Character-level models spell words letter by letter and are not filtered.
`rnnlm generate --no-blocklist` (or `mask_blocklist=False`) turns the mask off.
A test checks the bundled model's vocabulary against this list.
"""

# Grouped by why a word is here; inflections are listed because matching is exact.
SLURS = frozenset("""
    nigger niggers nigga niggas faggot faggots fag fags dyke dykes tranny trannies
    retard retards retarded chink chinks gook gooks spic spics kike kikes wetback wetbacks
    raghead ragheads towelhead towelheads coon coons beaner beaners
""".split())
SEXUAL = frozenset("""
    porn porno pornography incest rape raped rapes raping rapist cum cumming jizz
    blowjob blowjobs handjob handjobs dildo dildos orgasm orgasms masturbate masturbating
    masturbation horny boobs tits titties cock cocks pussy pussies cunt cunts whore whores
    slut sluts anal erection boner hentai nsfw
""".split())
PROFANITY = frozenset("""
    fuck fucks fucked fucker fuckers fucking fuckin motherfucker motherfuckers
""".split())
BLOCKLIST = SLURS | SEXUAL | PROFANITY


def is_blocked(token):
    """True when `token` (any case) is on the list."""
    return token.lower() in BLOCKLIST


def blocked_ids(vocabulary):
    """The ids of `vocabulary`'s words that are on the list, sorted: what generation masks."""
    return sorted(i for word, i in vocabulary.word_to_index.items() if is_blocked(word))
