"""Made-up names of the synthetic reasoning tasks (the vocabularies the released data sets use)."""

PROSQA_PEOPLE = (
    "Alex", "Bob", "Carol", "Davis", "Eva", "Fae", "Gabriel", "Jack", "Max", "Oliver", "Polly", "Rex", "Sally",
    "Sam", "Stella", "Tom", "Wren",
)
PROSQA_CONCEPTS = (
    "bompus", "boompus", "brimpus", "chorpus", "dumpus", "felpus", "fompus", "gerpus", "gorpus", "grimpus",
    "gwompus", "hilpus", "impus", "jelpus", "jompus", "kerpus", "lempus", "lorpus", "numpus", "quimpus", "rempus",
    "rompus", "rorpus", "scrompus", "shumpus", "sterpus", "storpus", "terpus", "timpus", "tumpus", "vumpus",
    "worpus", "wumpus", "yerpus", "yimpus", "yumpus", "zhorpus", "zumpus",
)
PRONTOQA_CONCEPTS = (
    "wumpus", "yumpus", "zumpus", "dumpus", "rompus", "numpus", "tumpus", "vumpus", "impus", "jompus", "gorpus",
    "shumpus", "lempus", "sterpus", "grimpus", "lorpus", "brimpus",
)
PRONTOQA_ENTITIES = ("Fae", "Rex", "Sally", "Max", "Alex", "Sam", "Polly", "Stella", "Wren")
# Property families: two members each, so a rule can contradict another ("hot" vs "cold").
PRONTOQA_PROPERTIES = (
    ("hot", "cold"), ("red", "blue"), ("large", "small"), ("sweet", "sour"), ("happy", "sad"),
    ("bright", "dull"), ("wooden", "metallic"), ("floral", "fruity"), ("loud", "quiet"), ("fast", "slow"),
    ("opaque", "transparent"), ("feisty", "shy"), ("rainy", "sunny"), ("earthy", "spicy"), ("melodic", "muffled"),
    ("temperate", "windy"), ("amenable", "aggressive"), ("nervous", "kind"),
)
