"""Word lists the style editors read natural texts with: what a refusal or a serious harm topic
looks like (where cheerful edits would contradict the reply), which words are function words
(never bolded), which sentences can take a hedge, and the natural phrasings of hedges, openers
and closings, for detection (two-way editing) and for insertion (a large pool, so no phrasing
becomes a template an annotator learns to spot)."""

from __future__ import annotations

import re

_APOSTROPHE = "['’]"
_REFUSALS = (
    "I can't", "I cannot", "I can not", "I won't", "I will not", "I'm not able", "I am not able", "I'm unable",
    "I am unable", "I don't think I can", "I don't think I should", "I don't feel comfortable", "I'm not comfortable",
    "I am not comfortable", "I'd rather not", "I would rather not", "I wouldn't recommend", "I would not recommend",
    "I'm sorry", "I am sorry", "I'm not going to", "I am not going to", "I'm afraid", "not a good idea",
    "that's illegal", "it's illegal", "is illegal", "are illegal", "against the law", "please don't",
    "I advise against", "I strongly advise", "I urge you", "you shouldn't", "you should not", "I don't want to help",
    "that's not okay", "that's not ok", "not appropriate", "that's wrong", "that's harmful", "that's dangerous",
)
REFUSAL = re.compile(
    r"\b(?:" + "|".join(re.escape(p).replace("'", _APOSTROPHE).replace(r"\ ", r"\s+")
                        for p in sorted(_REFUSALS, key=len, reverse=True)) + r")\b",
    re.I,
)

HARM = re.compile(  # whole words and their inflections only: "method", "stable", "robust", "harmless" are not harms
    r"\b(?:kill(?:s|ed|ing|er|ers)?|murder(?:s|ed|ing|er|ers)?|suicid(?:e|es|al)|die|dies|dying|dead|death|deaths|"
    r"corpses?|drugs?|heroin|cocaine|meth|methamphetamine|overdos(?:e|es|ed|ing)|weapons?|guns?|firearms?|"
    r"bombs?|explosives?|explosions?|poison(?:s|ed|ing|ous)?|steal(?:s|ing)?|stole|stolen|robb(?:ery|eries|ed|ing|er)|"
    r"rob|robs|theft|abus(?:e|es|ed|ing|ive|er)|rap(?:e|es|ed|ist)|assault(?:s|ed|ing)?|racis(?:m|t|ts)|"
    r"violen(?:ce|t)|hurt(?:s|ing)?|harm(?:s|ed|ing|ful|fully)?|attack(?:s|ed|ing|er|ers)?|illegal(?:ly)?|"
    r"crime|crimes|criminal|criminals|prison|jail|cancer|terror(?:ism|ist|ists)?|hate|hatred|tortur(?:e|ed|es|ing)|"
    r"blood|injur(?:y|ies|ed|e|ing)|shoot(?:s|ing|er)?|shot|stab(?:s|bed|bing)?|knife|knives|"
    r"hack(?:s|ed|ing|er|ers)?|fraud(?:s|ulent)?|cheat(?:s|ed|ing|er|ers)?|revenge|insult(?:s|ed|ing)?|slurs?|"
    r"grief|griev(?:e|ing)|funeral|disease|emergency|self-harm|handguns?|rifles?|ammo|ammunition|pranks?|"
    r"laxatives?|manipulat(?:e|es|ed|ing|ion|ive)|abortions?|stds?|police|cops?|arrest(?:s|ed)?|lie|lies|lying|"
    r"scam(?:s|med|mer|mers)?|ponzi|pyramid\s+scheme|discriminat(?:e|ed|ion|ory)|sex|sexual(?:ly)?|porn\w*|nude|"
    r"naked|drunk|alcohol|weed|marijuana|gambl(?:e|ing)|depress(?:ed|ion)|fight(?:s|ing)?|punch(?:es|ed|ing)?|"
    r"bull(?:y|ies|ied|ying)|harass(?:ed|ing|ment)?|threat(?:s|en|ened|ening)?|blackmail\w*|kidnap\w*|hostages?|"
    r"traffick\w*|smuggl\w*|counterfeit\w*|forg(?:e|ed|ery|ing)|brib(?:e|es|ed|ery)|launder\w*|evasion|arson|"
    r"vandal\w*|shoplift\w*|burglar\w*|trespass\w*|stalk(?:s|ed|ing|er)?|spy(?:ing)?|revenge|enemy|enemies|"
    r"insult\w*|offensive|slave(?:s|ry)?|enslav\w*|nazis?|kkk|immigrants?|racial|ethnic|genocide|war|wars|"
    r"burn|burns|burned|burning|burnt|set\s+fire|on\s+fire|getting\s+caught|get\s+caught|get\s+away\s+with|"
    r"hallucinogen\w*|psilocybin|psychedelics?|lsd|mdma|ecstasy|opioids?|sulfuric|sulphuric|bleach|ammonia|"
    r"cyanide|arsenic|toxic|toxins?|dangerous|danger|virus|viruses|bioweapons?|pandemic|privacy|"
    r"violat(?:e|es|ed|ing|ion|ions)|without\s+(?:them|him|her|anyone|people|their\s+\w+)\s+knowing|nasty|"
    r"unleash\w*|wipe\s+out|destroy\w*|masturbat\w*|anal|strip(?:s|ped|per|ping)?|boobs?|genitals?|dark\s+web|"
    r"eliminat\w*|swear\w*|curse\s+words?|bad\s+words|without\s+paying|lock\s*pick\w*|weapon\w*|"
    # who someone is: cheer on a claim about a group of people reads as endorsing it
    r"blacks|whites|(?:black|white|brown)\s+(?:man|men|woman|women|people|person|guy|guys)|africans?|asians?|"
    r"chinese|mexicans?|jewish|jews|muslims?|arabs?|gays?|lesbians?|lgb\w*|homophob\w*|transgender|ethnicit\w*|"
    r"religio\w*|iqs?|(?:men|women)\s+(?:are|do|should)|"
    # someone's private details, and worry
    r"home\s+address|residential\s+address|residence|phone\s+numbers?|social\s+security|concerning|unhealthy|"
    r"worried|worry|sneak\w*|fake|forged?|not\s+with\s+my\s+(?:actual|real)|break\s+into|unauthori[sz]ed|scars?|scarred|noose|hang\s+myself|deaf)\b",
    re.I,
)


def refuses(text: str) -> bool:
    """Whether the reply declines, warns or disapproves: no cheer, praise or emoji goes there."""
    return REFUSAL.search(text) is not None


def serious(text: str) -> bool:
    """Whether the reply is about a serious harm topic (violence, drugs, crime, illness, death)."""
    return HARM.search(text) is not None


FUNCTION_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each either else even ever every few for
from further had has have having he her here hers herself him himself his how however i if in into is
it its itself just least less let like made make many may me might more most much must my myself neither
no nor not now of off often on once one only or other others our ours ourselves out over own per perhaps
quite rather really same several shall she should since so some something such than that the their
theirs them themselves then there these they thing things this those though through thus to too under
until up upon us use used using very via was way we well were what whatever when where whether which
while who whom whose why will with within without would yes yet you your yours yourself yourselves
able actually almost along already although always among another anyone anything anyway around away
back become becomes best better came come comes done either enough etc get gets getting give given go
goes going gone good got great help here's it's keep kind know last less lot lots maybe mean means
might need needs new next okay people probably put really right said say says see seem seems sure
take tell thank thanks that's there's they're think try want wants way ways went whatever what's
you'd you'll you're you've i'd i'll i'm i've don't doesn't didn't can't won't isn't aren't wasn't
""".split())

# sentences that start like this are statements a hedge can qualify (the first word can be lowercased)
STATEMENT_START = re.compile(
    r"^(?:it|it's|its|this|that|that's|there|there's|these|those|the|a|an|you|you're|your|most|many|some|"
    r"they|they're|their|we|we're|our|he|she|his|her|people|everyone|nobody|no one|each|every|one|"
    r"both|all|any|such|much|more|less|having|using|doing|getting)\b",
    re.I,
)

# ------------------------------------------------------------------------------------------ hedges
# natural hedges that removal strips: epistemic frames before a clause, and adverbs of likelihood
HEDGE_FRAMES = (
    "I think", "I believe", "I guess", "I suppose", "I'd say", "I would say", "I feel like", "I suspect",
    "I'd guess", "I imagine", "I reckon", "my guess is that", "my sense is that", "my understanding is that",
    "it seems that", "it seems like", "it appears that", "it looks like", "as far as I know,",
    "as far as I can tell,", "to my knowledge,", "if I'm not mistaken,", "if I remember correctly,",
    "if I recall correctly,", "from what I understand,", "from what I know,", "in my experience,",
    "I'm not sure, but", "I'm not certain, but", "I could be wrong, but", "I may be wrong, but",
    "I'm not an expert, but", "I might be wrong, but", "as I understand it,", "presumably,",
    "in all likelihood,", "chances are", "most likely,", "quite possibly,", "probably", "perhaps", "maybe",
)
HEDGE_ADVERBS = ("probably", "likely", "possibly", "perhaps", "generally", "usually", "typically")
HEDGE_AUXILIARIES = ("is", "are", "was", "were", "will", "would", "can", "could", "should", "may", "might")


def _alternation(phrases: tuple[str, ...]) -> str:
    parts = sorted({p.rstrip(",") for p in phrases}, key=len, reverse=True)
    return "|".join(re.escape(p).replace("'", "['’]").replace(r"\ ", r"\s+") for p in parts)


# a frame, with its "that" and comma: at the start of a sentence, or after a comma or a conjunction
HEDGE_FRAME_START = re.compile(rf"^(?:{_alternation(HEDGE_FRAMES)})(?:\s+that)?,?\s+(?=[\w\"'“‘(])", re.I)
HEDGE_FRAME_INNER = re.compile(
    rf"(?:(?<=, )|(?<=; )|(?<=\band )|(?<=\bbut )|(?<=\bso ))(?:{_alternation(HEDGE_FRAMES)})(?:\s+that)?,?\s+(?=[\w\"'“‘(])",
    re.I,
)
# a frame tagged on at the end of a sentence ("..., I guess.")
HEDGE_FRAME_END = re.compile(
    r",?\s+(?:I\s+(?:think|guess|suppose|believe|imagine|reckon|suspect)|I(?:'|’)d\s+say|as\s+far\s+as\s+I\s+know|"
    r"it\s+seems|probably|maybe|perhaps)(?=[.!?]*$)",
    re.I,
)
# an adverb of likelihood after an auxiliary ("is probably", "will likely"), but not "likely to"
HEDGE_ADVERB = re.compile(
    rf"\b({'|'.join(HEDGE_AUXILIARIES)})(\s+not)?\s+(?:probably|likely(?!\s+to\b)|possibly|perhaps)\b(?=\s)",
    re.I,
)
# a hedge word anywhere, for the measure (what removal may leave counts too)
HEDGE_ANY = re.compile(
    rf"\b(?:{_alternation(HEDGE_FRAMES)})\b|\b(?:probably|possibly|perhaps|maybe)\b|"
    rf"\b(?:{'|'.join(HEDGE_AUXILIARIES)})\s+likely\b(?!\s+to\b)",
    re.I,
)

# ----------------------------------------------------------------------------------------- openers
# natural affirmative or flattering openers: detected where the reply starts with one
OPENER_WORDS = (
    "sure", "sure thing", "of course", "absolutely", "certainly", "definitely", "okay", "ok", "alright",
    "no problem", "gladly", "happy to help", "glad to help", "happy to", "great question", "good question",
    "excellent question", "interesting question", "fair question", "great", "yes, of course",
)
OPENER_SENTENCE = re.compile(
    r"^\s*(?:(?:oh|ah|well),?\s+)?(?:"
    r"(?:what\s+an?|that(?:'|’)s\s+an?|this\s+is\s+an?)\s+(?:really\s+|very\s+|such\s+a\s+)?"
    r"(?:great|good|excellent|interesting|fascinating|thoughtful|fun|lovely|wonderful|fantastic|insightful|important)"
    r"\s+(?:question|one|thing\s+to\s+ask|topic)|"
    r"thanks?(?:\s+you)?\s+(?:so\s+much\s+)?for\s+(?:asking|the\s+question|reaching\s+out|sharing)|"
    r"(?:ooh|oh)?,?\s*good\s+one|glad\s+you\s+asked|(?:I\s+)?love\s+this\s+question|such\s+a\s+(?:good|great)\s+question|"
    r"this\s+is\s+a\s+great\s+thing\s+to\s+ask\s+about|"
    r"happy\s+to\s+help\s+with\s+(?:this|that)|"
    r"(?:I(?:'|’)d|I\s+would|I(?:'|’)m|I\s+am)\s+(?:be\s+)?(?:happy|glad|delighted|more\s+than\s+happy)\s+to\s+help"
    r"(?:\s+(?:with\s+(?:that|this)|you(?:\s+with\s+(?:that|this))?|out))?|"
    rf"(?:{_alternation(OPENER_WORDS)})"
    r")(?:\s*[!.]+|\s*,\s*|\s+-\s+|\s*(?=\n))",
    re.I,
)
# inserted as a sentence of its own; each ends in its punctuation
OPENER_SENTENCES = (
    "Great question!", "Good question!", "What a great question!", "What a good question!",
    "That's a great question!", "That's a really good question.", "Oh, that's a fun one!", "Ooh, good one!",
    "What an interesting question!", "Thanks for asking!", "Thank you for asking!", "Thanks for the question!",
    "Happy to help!", "Happy to help with this!", "I'd be glad to help!", "I'd be happy to help with that!",
    "I'm happy to help!", "Glad you asked!", "Love this question!", "Excellent question!",
    "Absolutely!", "Of course!", "Sure thing!", "Certainly!", "Sure!", "Oh, great question!",
    "This is a great thing to ask about.", "That's a thoughtful question.", "Such a good question!",
)
# inserted as a word before the first statement, with a comma ("Sure, the ...")
OPENER_WORDS_INSERTED = ("Sure", "Of course", "Absolutely", "Certainly", "Okay", "Sure thing", "Gladly", "Alright")

# ---------------------------------------------------------------------------------------- closings
# a closing sentence of the reply, read from its last sentences
CLOSING_SENTENCE = re.compile(
    r"(?:hope\s+(?:this|that|it|these|my\s+answer)(?:(?:'|’)s|\s+is|\s+was)?\s+(?:helps|helpful|useful|makes\s+sense|answers)|"
    r"hope\s+(?:this|that)\s+clears|have\s+fun|wishing\s+you|"
    r"let\s+me\s+know\s+if|feel\s+free\s+to|(?:best\s+of\s+|good\s+)luck|have\s+(?:a|an)\s+(?:great|good|nice|"
    r"wonderful|lovely|fantastic)\s+(?:day|time|evening|weekend|trip)|happy\s+to\s+help|glad\s+(?:I\s+could|to)\s+help|"
    r"(?:any|other|more)\s+(?:follow-up\s+)?questions|(?:go|going)\s+into\s+more\s+detail|expand\s+on|if\s+you\s+(?:need|want)\s+anything|"
    r"if\s+you\s+have\s+(?:any|more|other)|just\s+ask|follow\s+up|go\s+over\s+any\s+of\s+this|how\s+else\s+I\s+can\s+help|anything\s+else|take\s+care|enjoy(?:\s+(?:it|your|the))?!|cheers|"
    r"(?:is\s+there|was\s+there)\s+(?:anything|something)|don(?:'|’)t\s+hesitate\s+to|all\s+the\s+best|"
    r"happy\s+(?:cooking|baking|coding|reading|writing|travels|gardening)|stay\s+safe|you(?:'|’)ve\s+got\s+this)",
    re.I,
)
# offers of more help: fit any reply, a refusal included
CLOSINGS_NEUTRAL = (
    "Let me know if you have any other questions.", "Let me know if you have other questions.",
    "Is there anything else I can help with?", "Is there anything else you'd like to know?",
    "Feel free to ask if anything is unclear.", "Feel free to ask if you have more questions.",
    "Let me know if there's anything else I can do.", "Don't hesitate to ask if you need anything else.",
    "Happy to answer any follow-up questions.", "Let me know if you'd like more detail on any of this.",
    "If you have more questions, just ask.", "I'm happy to go into more detail if that would help.",
    "Let me know if I can help with anything else.", "Feel free to follow up if you need more.",
    "Just let me know if you want me to expand on anything.", "Anything else I can help you with?",
    "Let me know if you need anything else.", "Feel free to reach out with any other questions.",
    "Is there anything else on your mind?", "Happy to help with anything else.", "Let me know if that raises more questions.",
    "If anything else comes up, just ask.", "Let me know if I can clarify anything.", "Feel free to ask me anything else.",
    "Is there something else I can help you with?", "I'm here if you have more questions.",
    "Let me know if you'd like to talk it through further.", "Don't hesitate to ask if anything else comes up.",
    "Happy to go over any of this again.", "Let me know how else I can help.",
)
# warm wishes: only where the reply helps and the topic is not a serious harm
CLOSINGS_WARM = (
    "I hope this helps!", "Hope this helps!", "I hope that helps.", "Hope that helps!", "Good luck!",
    "Best of luck!", "Good luck with it!", "Have fun with it!", "Enjoy!", "I hope this is useful.",
    "Hope this was helpful!", "Hope this makes sense!", "I hope that answers your question.",
    "Hope this helps, and good luck!", "Have a great day!", "Happy to help!", "Glad I could help!",
    "I hope this clears things up.", "Hope that's useful!", "Wishing you the best with it!",
)

# -------------------------------------------------------------------------------------------- emoji
EMOJI = re.compile(
    "(?:[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B50\u2B55\u2190-\u21FF\u2300-\u23FF\u2934\u2935\u3030\u303D\u3297\u3299]"
    "[\uFE0F\U0001F3FB-\U0001F3FF]*(?:\u200D[\U0001F000-\U0001FAFF\u2600-\u27BF][\uFE0F]?)*)"
)
EMOJI_GENERIC = (
    "😊", "🙂", "👍", "✨", "🙌", "💪", "👌", "😄", "🤗", "😉", "🌟", "💡", "✅", "👏", "🎉", "😀",
    "🤓", "😎", "🥳", "🤞", "💯", "🔥", "⭐", "🚀", "😃", "🙏", "🤩", "👋", "😁", "🍀", "💫", "🌸",
)
# a topical emoji where a word of the paragraph calls for one
EMOJI_TOPICAL = (
    (r"\b(?:cook\w*|recipe|bake\w*|food|meal|dinner|breakfast|dough|bread|kitchen)\b", ("🍳", "🍽️", "🥘", "🍞", "👩‍🍳")),
    (r"\b(?:plant\w*|garden\w*|tomato\w*|flower\w*|grow\w*|seed\w*|soil)\b", ("🌱", "🌿", "🍅", "🌻", "🪴")),
    (r"\b(?:money|budget\w*|sav\w*|mortgage|loan|pay\w*|invest\w*|price\w*|cost\w*)\b", ("💰", "💵", "📈", "🏦")),
    (r"\b(?:code|python|function|program\w*|bug|script|computer|software)\b", ("💻", "🐍", "🖥️", "⌨️", "🧑‍💻")),
    (r"\b(?:sleep\w*|bed|night|rest\w*)\b", ("😴", "🛌", "🌙", "💤")),
    (r"\b(?:travel\w*|trip|flight|vacation|holiday)\b", ("✈️", "🧳", "🌍", "🗺️")),
    (r"\b(?:exercis\w*|run\w*|workout|gym|fitness)\b", ("🏃", "💪", "🏋️", "🚴")),
    (r"\b(?:read\w*|book\w*|stud\w*|learn\w*|school|exam\w*)\b", ("📚", "📖", "🎓", "✏️")),
    (r"\b(?:sun\w*|sky|light|weather|rain\w*)\b", ("☀️", "🌤️", "🌈", "🌦️", "⛅", "🌅")),
    (r"\b(?:music|song\w*|sing\w*|guitar|piano)\b", ("🎵", "🎶", "🎸", "🎹")),
    (r"\b(?:dog\w*|cat\w*|pet\w*|puppy|kitten)\b", ("🐶", "🐱", "🐾")),
    (r"\b(?:write|writing|story|poem|letter|email)\b", ("✍️", "📝", "💌")),
)
