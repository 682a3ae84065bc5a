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
# Property families of the release's fictional ontology: a concept's property is one word of a family,
# and no two concepts of a question draw from the same family (the query's contradicting rule aside).
PRONTOQA_PROPERTIES = (
    ("blue", "red", "brown", "orange"), ("small", "large"), ("metallic", "wooden", "luminous", "liquid"),
    ("transparent", "opaque"), ("nervous", "happy", "feisty", "shy"), ("bright", "dull"),
    ("sweet", "sour", "spicy", "bitter"), ("floral", "fruity", "earthy"), ("hot", "cold", "temperate"),
    ("kind", "mean", "angry", "amenable", "aggressive"), ("melodic", "muffled", "discordant", "loud"),
    ("slow", "moderate", "fast"), ("windy", "sunny", "overcast", "rainy", "snowy"),
)
