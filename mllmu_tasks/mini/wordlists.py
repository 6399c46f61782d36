"""Word lists of the mini benchmark's fictitious profiles.

Written for this project (not copied from MLLMU-Bench). Every list has at
least five entries, which the generator relies on to draw four distinct
multiple-choice options. Values are ASCII, lower-case where they appear
mid-sentence, and contain no ``__`` (the cloze blank). Professions,
animals and the like never start with a vowel letter that is pronounced as
a consonant (e.g. "university"), so ``an``/``a`` follows the first letter.
"""

FEMALE_FIRST_NAMES = (
    "Adaeze", "Beatrix", "Camila", "Dagny", "Elif", "Freya", "Greta", "Hana",
    "Ines", "Jolene", "Kaia", "Leonie", "Marisol", "Nadia", "Oona", "Priya",
    "Quinn", "Rosalind", "Saskia", "Tamsin", "Ulla", "Vesna", "Wilhelmina",
    "Ximena", "Yara", "Zofia", "Aurelie", "Brigid", "Cressida", "Delphine",
    "Esme", "Fenna", "Ginevra", "Hollis", "Isolde", "Juniper", "Kirsi",
    "Lorna", "Mirela", "Noor",
)

MALE_FIRST_NAMES = (
    "Anselm", "Bastian", "Cormac", "Dario", "Emeka", "Florin", "Gideon",
    "Hamish", "Ilya", "Joaquin", "Kasimir", "Leander", "Mateus", "Niklas",
    "Osric", "Piotr", "Rafferty", "Soren", "Tadeo", "Ulrich", "Vikram",
    "Wendell", "Xavier", "Yusuf", "Zoltan", "Alaric", "Benedek", "Caspian",
    "Desmond", "Eero", "Fabian", "Gustavo", "Hakon", "Ignatius", "Jasper",
    "Kenji", "Lucian", "Marek", "Nestor", "Orrin",
)

LAST_NAMES = (
    "Abernathy", "Balogun", "Castellanos", "Dimitrova", "Eriksen", "Fairweather",
    "Gallagher", "Haddad", "Iwasaki", "Jankowski", "Kowalczyk", "Lindqvist",
    "Moreau", "Nakamura", "Okonkwo", "Petrescu", "Quintero", "Rasmussen",
    "Szabo", "Thornbury", "Uchida", "Valcourt", "Whitlock", "Yilmaz",
    "Zielinski", "Achterberg", "Brannigan", "Cavanaugh", "Delacroix", "Esposito",
    "Fitzgerald", "Grunewald", "Halvorsen", "Ivanenko", "Jorgensen", "Kaminski",
    "Lockhart", "Marchetti", "Novak", "Oyelaran", "Pemberton", "Rautio",
    "Sandoval", "Takahashi", "Underhill", "Vasquez", "Wexford", "Zamora",
    "Ashdown", "Bergstrom", "Coelho", "Drummond", "Engel", "Falkenrath",
    "Goldberg", "Hargreaves", "Ibarra", "Kittredge", "Larkspur", "Mendoza",
)

#: (city, country) pairs, used for birth places and residences.
CITIES = (
    ("Tallinn", "Estonia"), ("Porto", "Portugal"), ("Bergen", "Norway"),
    ("Ljubljana", "Slovenia"), ("Cork", "Ireland"), ("Gdansk", "Poland"),
    ("Valparaiso", "Chile"), ("Cartagena", "Colombia"), ("Osaka", "Japan"),
    ("Busan", "South Korea"), ("Kaohsiung", "Taiwan"), ("Da Nang", "Vietnam"),
    ("Chiang Mai", "Thailand"), ("Pune", "India"), ("Kandy", "Sri Lanka"),
    ("Marrakesh", "Morocco"), ("Accra", "Ghana"), ("Mombasa", "Kenya"),
    ("Durban", "South Africa"), ("Windhoek", "Namibia"), ("Izmir", "Turkey"),
    ("Tbilisi", "Georgia"), ("Yerevan", "Armenia"), ("Almaty", "Kazakhstan"),
    ("Halifax", "Canada"), ("Winnipeg", "Canada"), ("Savannah", "United States"),
    ("Boise", "United States"), ("Tucson", "United States"), ("Oaxaca", "Mexico"),
    ("Merida", "Mexico"), ("Cusco", "Peru"), ("Montevideo", "Uruguay"),
    ("Cordoba", "Argentina"), ("Recife", "Brazil"), ("Hobart", "Australia"),
    ("Dunedin", "New Zealand"), ("Aarhus", "Denmark"), ("Tampere", "Finland"),
    ("Gothenburg", "Sweden"), ("Graz", "Austria"), ("Basel", "Switzerland"),
    ("Leipzig", "Germany"), ("Lyon", "France"), ("Bologna", "Italy"),
    ("Seville", "Spain"), ("Thessaloniki", "Greece"), ("Brno", "Czech Republic"),
    ("Cluj-Napoca", "Romania"), ("Plovdiv", "Bulgaria"), ("Split", "Croatia"),
    ("Vilnius", "Lithuania"), ("Antwerp", "Belgium"), ("Utrecht", "Netherlands"),
    ("Reykjavik", "Iceland"), ("Edinburgh", "Scotland"), ("Cardiff", "Wales"),
)

#: Used for the person's job and their parents' jobs.
PROFESSIONS = (
    "marine biologist", "landscape architect", "software engineer", "pediatric nurse",
    "investigative journalist", "structural engineer", "museum archivist", "pastry chef",
    "air traffic controller", "veterinary surgeon", "high school physics teacher",
    "documentary filmmaker", "urban planner", "forensic accountant", "orchestra conductor",
    "wildlife photographer", "civil rights lawyer", "industrial designer", "pharmacist",
    "geologist", "speech therapist", "commercial pilot", "data analyst", "carpenter",
    "textile designer", "occupational therapist", "astronomer", "radio producer",
    "economist", "firefighter", "translator", "dental hygienist", "electrician",
    "bookshop owner", "park ranger", "sommelier", "glassblower", "actuary",
    "interior designer", "clinical psychologist", "ship captain", "librarian",
    "organic farmer", "robotics researcher", "event planner", "locksmith",
)

#: Names of real universities; fictitious people "were educated at" them.
UNIVERSITIES = (
    "Uppsala University", "Kyoto University", "Leiden University", "Aarhus University",
    "Ghent University", "Utrecht University", "Lund University", "McGill University",
    "Heidelberg University", "Stockholm University", "Tufts University", "Rice University",
    "Emory University", "Brown University", "Vanderbilt University", "Georgetown University",
    "Carleton University", "Makerere University", "Cairo University", "Bocconi University",
    "Maastricht University", "Radboud University", "Tilburg University",
    "Simon Fraser University", "Waseda University", "Yonsei University", "Fudan University",
    "Aalto University", "Chulalongkorn University", "Monash University", "Keio University",
    "Tsinghua University", "Seoul National University", "Duke University",
    "Cornell University", "Boston University",
)

HOBBIES = (
    "rock climbing", "birdwatching", "playing the cello", "amateur astronomy", "pottery",
    "chess", "sailing", "urban sketching", "beekeeping", "trail running", "knitting",
    "woodworking", "salsa dancing", "kayaking", "baking sourdough bread", "photography",
    "gardening", "calligraphy", "scuba diving", "collecting vinyl records", "fly fishing",
    "playing the violin", "origami", "long-distance cycling", "archery", "fencing",
    "writing poetry", "restoring old bicycles", "painting watercolors", "mountain biking",
    "surfing", "geocaching", "quilting", "cross-country skiing", "model railroading",
    "solving jigsaw puzzles",
)

MEDICAL_CONDITIONS = (
    "asthma", "type 2 diabetes", "migraine", "hypertension", "celiac disease", "eczema",
    "seasonal allergies", "chronic back pain", "hypothyroidism", "mild scoliosis",
    "psoriasis", "iron deficiency anemia", "lactose intolerance", "tinnitus", "glaucoma",
    "irritable bowel syndrome", "sleep apnea", "rheumatoid arthritis", "color blindness",
    "a heart murmur", "a peanut allergy", "chronic sinusitis", "mild hearing loss",
    "gout",
)

FOODS = (
    "mushroom risotto", "pad thai", "shakshuka", "pierogi", "fish tacos", "ramen",
    "moussaka", "jollof rice", "beef stroganoff", "paella", "butter chicken", "pho",
    "falafel wraps", "lasagna", "bibimbap", "goulash", "ceviche", "spanakopita",
    "chicken tikka masala", "cheese fondue", "empanadas", "dumplings", "gazpacho",
    "lamb tagine", "poutine", "sushi", "pesto gnocchi", "feijoada", "borscht",
    "apple strudel", "clam chowder", "vegetable curry",
)

PET_ANIMALS = (
    "cat", "dog", "parrot", "rabbit", "hamster", "tortoise", "goldfish", "ferret",
    "guinea pig", "canary", "iguana", "hedgehog",
)

PET_NAMES = (
    "Biscuit", "Pepper", "Mochi", "Juniper", "Ziggy", "Noodle", "Clementine", "Otis",
    "Pickles", "Marble", "Sprout", "Bramble", "Waffles", "Cosmo", "Tofu", "Hazel",
    "Rufus", "Pippin", "Nutmeg", "Fig", "Boots", "Kiwi", "Domino", "Maple",
)
