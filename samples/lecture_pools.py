"""Word pools for the generated lecture (samples/lecture.py): topics, fact templates, voices, fonts, colours.

Every pool is drawn from by the lecture's seed; pools for different kinds of fact never share a word, so a fact
spoken is never also shown and an absent subject appears nowhere.
"""

from __future__ import annotations

# (slide title, three keywords the narration and bullets talk about)
TOPICS = [
    ("Sampling and Aliasing", "sampling", "aliasing", "frequency"), ("Linear Filters", "filters", "phase", "gain"),
    ("Sensor Calibration", "calibration", "offset", "drift"), ("Error Budgets", "errors", "margins", "tolerance"),
    ("Queueing Delays", "queues", "arrivals", "waiting"), ("Cache Design", "caches", "misses", "locality"),
    ("Battery Chemistry", "batteries", "charge", "electrodes"), ("Heat Transfer", "heat", "conduction", "radiation"),
    ("Signal Noise", "noise", "averaging", "bandwidth"), ("Data Compression", "compression", "entropy", "codes"),
    ("Control Loops", "feedback", "stability", "overshoot"), ("Network Routing", "routing", "packets", "hops"),
    ("Load Balancing", "servers", "requests", "fairness"), ("Materials Testing", "stress", "strain", "fatigue"),
    ("Wind Turbines", "turbines", "blades", "torque"), ("Solar Panels", "panels", "sunlight", "efficiency"),
    ("Water Treatment", "filtration", "chlorine", "pumps"), ("Bridge Design", "bridges", "beams", "loads"),
    ("Traffic Flow", "traffic", "lanes", "signals"), ("Image Sensors", "pixels", "exposure", "lenses"),
    ("Sound Insulation", "sound", "walls", "echoes"), ("Robot Arms", "joints", "motors", "grippers"),
    ("Weather Models", "forecasts", "pressure", "humidity"), ("Soil Mechanics", "soil", "moisture", "settlement"),
]
FILLERS = [
    "In this part we look at {k1}.", "{K1} shows up in many practical systems.",
    "A common mistake is to ignore {k2} when you study {k1}.", "Keep in mind how {k2} relates to {k3}.",
    "We will come back to {k3} in a later session.", "Try to sketch {k1} on paper before you compute anything.",
    "Most books explain {k2} with a simple diagram.", "Engineers measure {k3} before they change a design.",
    "The key idea is that {k1} depends on {k2}.", "Ask yourself what happens to {k3} when the load doubles.",
    "Good notes on {k2} will help you later.", "Small changes in {k1} can have large effects.",
    "Let me give you an intuition for {k3}.", "This is where {k2} becomes important.",
    "Many students find {k3} surprising at first.", "The math behind {k1} is simpler than it looks.",
]
BULLETS = ["What we mean by {k1}", "How {k2} is measured", "Why {k3} matters", "{K1} versus {k2}", "Examples of {k3}",
           "Limits of {k1}", "{K2} in practice"]
# A word the narration says a known number of times and no slide or subtitle shows (counting questions).
MOTIFS = ["lighthouse", "violin", "pineapple", "glacier", "compass", "kettle"]
MOTIF_LINE = "Think of it like a {motif}: every part has a job."

# Facts only spoken: (sentence, question, answer). Numbers are given as digits; espeak says them as words.
SPOKEN = [
    ("The guest speaker next week is {first} {last}.", "Who is the guest speaker next week?", "{last}"),
    ("Our field trip goes to {town}.", "Where does the field trip go?", "{town}"),
    ("The lab experiment needs {volts} volts.", "How many volts does the lab experiment need?", "{volts}"),
    ("The quiz will be on {quizday}.", "On which day is the quiz?", "{quizday}"),
    ("The reference book is called {book}.", "What is the reference book called?", "{book}"),
    ("The best project wins a {prize}.", "What does the best project win?", "{prize}"),
    ("The printer on the second floor is named {bird}.", "What is the printer on the second floor named?", "{bird}"),
    ("Each group receives {budget} dollars for parts.", "How much money does each group receive for parts?",
     "{budget}"),
    ("The review session starts at {hour} o'clock.", "At what time does the review session start?", "{hour}"),
    ("The sensor kit weighs {kg} kilograms.", "How much does the sensor kit weigh?", "{kg}"),
]
# Facts only in the subtitle track: (cue, question, answer).
SUBTITLE = [
    ("Note: the parking permit code is {pcode}.", "What is the parking permit code?", "{pcode}"),
    ("Correction: the exam moves to hall {hall}.", "Which hall does the exam move to?", "{hall}"),
    ("The lab door PIN is {pin}.", "What is the lab door PIN?", "{pin}"),
    ("The forum password is {pw}.", "What is the forum password?", "{pw}"),
    ("Homework {hw} is optional.", "Which homework is optional?", "{hw}"),
    ("Slides are mirrored on server {srv}.", "Which server mirrors the slides?", "{srv}"),
]
SUBTITLE_FILLERS = ["[music]", "[applause]", "[students laughing]", "[pages turning]"]
# Facts only on slides: (bullet, question in the slide's words, question without them, answer).
SLIDE = [
    ("Meeting room {room}", "What is the meeting room number?", "Where do we meet?", "{room}"),
    ("Submission deadline: {month} {day}", "What is the submission deadline?", "When is the work due?",
     "{month} {day}"),
    ("Lab contact: Dr. {contact}", "Who is the lab contact?", "Whom should students ask about the laboratory?",
     "{contact}"),
    ("Max team size: {team}", "What is the max team size?", "How many people may work together in one group?",
     "{team}"),
    ("Course code {ccode}", "What is the course code?", "Which identifier does this class have?", "{ccode}"),
    ("Office hours: {officeday}", "When are office hours?", "On which day can students visit the teacher?",
     "{officeday}"),
    ("Exam length: {mins} minutes", "What is the exam length?", "How long does the test last?", "{mins} minutes"),
    ("Dataset size: {rows}M rows", "What is the dataset size?", "How big is the data?", "{rows}M"),
]
TABLE_TITLES = ["Quarterly Results", "Budget Overview", "Regional Figures", "Project Numbers"]
TABLE_CITIES = ["Austin", "Boston", "Chicago", "Phoenix", "Portland", "Atlanta", "Houston", "Denver"]
ORDINALS = ["first", "second", "third", "fourth"]
# (column, question in the slide's words, question without them); {q} = Q1..Q4, {ordinal} = first..fourth
TABLE_QUESTIONS = {
    "Cost": ("What was the {q} cost?", "How much did the {ordinal} quarter cost?"),
    "Units": ("How many units in {q}?", "How many items were sold in the {ordinal} quarter?"),
    "City": ("Which city is listed for {q}?", "In which town was the {ordinal} quarter's work based?"),
}
# Plausible questions whose subject (the word) is in no sentence, cue or slide of any lecture.
ABSENT = [
    ("What is the name of the teaching assistant?", "assistant"), ("How much does the textbook cost?", "textbook"),
    ("What is the Wi-Fi password?", "wi-fi"), ("Which bus goes to the campus?", "bus"),
    ("What is the dean's phone number?", "dean"), ("Where is the graduation ceremony held?", "graduation"),
    ("When does the cafeteria open?", "cafeteria"), ("How large is the scholarship?", "scholarship"),
    ("Which floor is the elevator out of service on?", "elevator"), ("How much is the tuition fee?", "tuition"),
    ("Who won the chess tournament?", "chess"), ("What is the name of the lecturer's dog?", "dog"),
]
COURSES = ["Foundations of Applied Engineering", "Measurement and Design", "Systems Thinking for Engineers",
           "Practical Engineering Methods"]
VALUES = {
    "first": ["Laura", "James", "Maria", "David", "Sarah", "Peter", "Anna", "Thomas"],
    "last": ["Carter", "Morgan", "Patel", "Garcia", "Hughes", "Foster", "Russell", "Parker", "Turner"],
    "town": ["Lisbon", "Oslo", "Glasgow", "Dublin", "Madrid", "Vienna", "Prague", "Helsinki"],
    "book": ["The Copper Key", "Silent Rivers", "Paper Mountains", "The Glass Garden", "Winter Engines"],
    "prize": ["bicycle", "telescope", "drone", "camera", "tablet"],
    "bird": ["Falcon", "Robin", "Sparrow", "Raven", "Heron"],
    "pw": ["marigold", "juniper", "saffron", "cobalt", "meadow"],
    "month": ["March", "April", "May", "June", "October", "November"],
    "contact": ["Nakamura", "Okafor", "Lindqvist", "Moreau", "Castillo"],
}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]

# espeak-ng voices (with a variant) and speaking rates (words per minute) a section is narrated with.
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbcwmd"]
VOICE_VARIANTS = ["", "+f3", "+m3", "+f2"]
SPEEDS = (140, 190)
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")
# (regular, bold) font files of the families fonts-dejavu installs
FONTS = [("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"), ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
         ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"), ("DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf"),
         ("DejaVuSerifCondensed.ttf", "DejaVuSerifCondensed-Bold.ttf")]
# (background, text, accent) with enough contrast for OCR at 448 px
THEMES = [((250, 250, 245), (20, 20, 30), (30, 80, 160)), ((20, 28, 48), (235, 235, 240), (250, 200, 60)),
          ((245, 235, 220), (60, 30, 20), (160, 40, 40)), ((30, 60, 40), (240, 245, 235), (180, 230, 120)),
          ((255, 255, 255), (0, 0, 0), (200, 60, 0)), ((40, 40, 40), (250, 250, 250), (90, 180, 250))]
