"""Phrase tables for the shop-floor report generator.

Why so many phrasings: with 20 labels per class a bag-of-words model only sees a
fraction of the ways operators describe a defect, while a pretrained encoder knows
that "ding" and "dent" mean the same thing. The tables are wide on purpose, share
their part/location vocabulary across every class, and carry phrasings that avoid
the class keyword altogether ("fingernail catches on a line").

Slots filled by the generator: ``{part}`` (a part name), ``{loc}`` (where on it).
"""

from __future__ import annotations

from collections.abc import Mapping

PARTS: tuple[str, ...] = (
    "housing", "bracket", "cover plate", "side panel", "flange", "bezel", "rim",
    "door skin", "hinge arm", "lid", "end cap", "mounting plate", "frame rail",
    "valve body", "pump housing", "motor cover", "gear case", "front panel",
    "back plate", "heat shield", "control box", "fan shroud", "manifold",
    "bearing cap", "terminal block", "enclosure", "chassis", "battery tray",
    "handle", "top cover", "base plate", "sensor mount", "connector shell",
)

LOCATIONS: tuple[str, ...] = (
    "on the left side", "near the weld seam", "at the upper edge", "next to hole 3",
    "on the A-surface", "by the label area", "at the corner", "on the underside",
    "around the boss", "near the datum", "on the flange face", "at pos. 2",
    "close to the logo", "on the mating face", "along the bottom edge",
    "at 3 o'clock", "inside the pocket", "on the visible side", "at the rear",
    "by the mounting holes", "on the outer surface", "near the parting line",
)

# How a finding is written. Three layers, mixed by the generator:
# nouns ("scuff") and states ("scuffed") per class, dropped into patterns every class
# shares ("{noun} on the {part}", "{part} {state}"), plus free-form idioms per class.
# The patterns carry no label; only the meaning of the noun or state does.
CLASS_NOUNS: Mapping[str, tuple[str, ...]] = {
    "scratch": (
        "scratch", "scuff", "score mark", "abrasion", "hairline", "scrape", "gouge",
        "graze", "rub mark", "swirl marks", "drag mark", "tool mark", "chafe mark", "nick",
        "scoring", "scuffing", "wear line", "striation", "scratches", "scuff marks",
    ),
    "dent": (
        "dent", "ding", "indentation", "dimple", "depression", "impact mark", "crease",
        "buckle", "kink", "dents", "dings", "deformation", "hollow", "pressure mark",
        "knock", "dimpling", "impact damage", "bend",
    ),
    "contamination": (
        "oil film", "residue", "grease", "dust", "foreign particle", "stain", "swarf",
        "metal chips", "fingerprints", "smudge", "dirt", "debris", "coolant residue", "lint",
        "fibres", "overspray", "adhesive residue", "weld spatter", "black specks", "smear",
        "water spots", "shavings", "filings", "grit", "soot", "lubricant", "particles",
    ),
    "misalignment": (
        "misalignment", "offset", "uneven gap", "step", "flush mismatch", "skew", "tilt",
        "gap variation", "lateral shift", "angular error", "mismatch", "out-of-square",
        "position error", "overlap",
    ),
    "missing_part": (
        "missing screw", "no gasket", "absent clip", "missing bolt", "no washer",
        "missing label", "empty rivet hole", "no o-ring", "missing spring", "missing nut",
        "no cap", "missing connector", "no grommet", "missing seal", "no pin",
        "missing bushing", "no cable tie", "missing stud", "no plug", "missing circlip",
        "no spacer", "missing fastener",
    ),
}

CLASS_STATES: Mapping[str, tuple[str, ...]] = {
    "scratch": (
        "scratched", "scuffed", "scored", "abraded", "scraped", "gouged", "grazed", "marred",
        "nicked", "chafed", "rubbed raw", "worn through", "streaked",
    ),
    "dent": (
        "dented", "dinged", "pushed in", "deformed", "crushed", "bent", "warped", "caved in",
        "buckled", "kinked", "flattened", "distorted", "bowed", "creased", "squashed",
        "pressed in", "dimpled",
    ),
    "contamination": (
        "dirty", "greasy", "oily", "dusty", "stained", "smeared", "contaminated", "soiled",
        "grimy", "sticky", "spotted", "fouled", "covered in residue",
    ),
    "misalignment": (
        "off-centre", "skewed", "not flush", "offset", "crooked", "misaligned",
        "out of position", "shifted", "tilted", "rotated", "not square", "sitting proud",
        "sitting low", "twisted", "lopsided", "out of true", "not seated", "cocked",
        "slanted", "askew", "out of line", "displaced",
    ),
    "missing_part": (
        "missing its screw", "without gasket", "lacking a clip", "short a bolt",
        "missing the washer", "without label", "missing a rivet", "without its o-ring",
        "missing a fastener", "not complete", "without the retaining ring", "missing hardware",
        "short one nut", "without seal",
    ),
    "no_defect": (
        "ok", "fine", "good", "within spec", "in tolerance", "acceptable", "passed",
        "conforming", "clean", "released", "approved", "as per drawing", "no findings",
    ),
}

NOUN_PATTERNS: tuple[str, ...] = (
    "{noun} {loc}", "{noun} on the {part}", "{part}: {noun}", "{size} {noun} {loc}",
    "found {noun} on the {part}", "{part} has {noun} {loc}", "{noun} seen {loc}",
    "{noun}", "{size} {noun}", "{noun} on {part}",
)

STATE_PATTERNS: tuple[str, ...] = (
    "{part} {state}", "{state} {part}", "{part} {state} {loc}", "{part} is {state}",
    "{part} came out {state}", "{state}", "{part} {state}, {size}",
)

SIZES: tuple[str, ...] = (
    "small", "large", "minor", "slight", "heavy", "approx 3 mm", "~5mm", "barely visible",
    "clearly visible", "1-2 mm", "about 10 mm", "several",
)

# Free-form idioms, each one way an operator writes the finding.
CLASS_PHRASES: Mapping[str, tuple[str, ...]] = {
    "scratch": (
        "fingernail catches on a line {loc}", "coating rubbed through to bare metal",
        "linear mark in the finish", "paint chipped and scraped", "long thin line in the coating",
        "{part} got scuffed in handling", "cut in the anodizing", "deep scratch, can feel it",
        "marred finish {loc}", "hairline across the {part}", "streaky wear lines on the face",
    ),
    "dent": (
        "crushed corner", "bent flange", "corner knocked in", "out of flat, hit mark {loc}",
        "edge folded over", "lip bent back", "concave spot on the surface",
        "dropped, corner squashed", "{part} dinged in transport", "bent tab {loc}",
        "sunk area {loc}",
    ),
    "contamination": (
        "swarf left inside", "hair stuck in the paint", "mould release left on",
        "something sticky {loc}", "blotch of lubricant", "debris in the pocket",
        "needs a wipe, oily {loc}", "grit embedded in the paint", "dust under the clear coat",
    ),
    "misalignment": (
        "holes don't line up", "step between the panels", "drifted off the mark",
        "edges not parallel", "{part} off its locating pin", "clearance uneven around the {part}",
        "{part} angled wrong", "gap too wide {loc}", "{part} sits proud", "not centred",
        "mating edges mismatched",
    ),
    "missing_part": (
        "empty hole where the rivet should be", "one of four screws missing",
        "insert not pressed in", "forgot the pin", "{part} shipped without its cover",
        "only three bolts", "screw count short by one", "component omitted",
        "incomplete assembly", "bolt not fitted", "clip absent", "o-ring not installed",
        "spring left out", "cap not fitted", "seal left off", "hole empty {loc}",
    ),
    "no_defect": (
        "within spec", "passed", "looks good", "nothing found", "no issues",
        "OK", "conforming", "acceptable", "meets requirements", "clean part",
        "no defects observed", "good part", "pass", "approved", "released",
        "all dims in tolerance", "visual ok", "NFF", "false alarm, part fine",
        "re-inspected, fine", "no action needed", "checked, all good",
        "no findings", "inspection complete, ok", "conforms to drawing",
        "{part} ok after recheck", "nothing wrong with it", "good to ship",
        "no nonconformance", "as expected", "accepted at final",
    ),
}

# Plain-words explanations operators add after the finding ("dent on lid, probably
# dropped"): a likely cause, or what they saw. They restate the class in everyday
# words, which a pretrained encoder relates to the finding and a keyword list built
# from a few labels has mostly never seen.
CLASS_CAUSES: Mapping[str, tuple[str, ...]] = {
    "scratch": (
        "dragged across the bench", "rubbed against the fixture", "scraped by the gripper",
        "slid along the conveyor rail", "caught on a sharp edge", "marked by a screwdriver",
        "packed without a separator", "stacked without foam", "rubbed by the next part",
        "brushed against the guard", "scraped on the pallet", "keyed by a loose bolt in the tote",
    ),
    "dent": (
        "dropped on the floor", "hit by the forklift", "knocked against the rack",
        "struck by the press tool", "crushed in the tote", "banged into the conveyor end",
        "squeezed too hard by the clamp", "landed on a corner", "bumped by a trolley",
        "impacted in transport", "hammered to fit", "stepped on",
    ),
    "contamination": (
        "not washed properly", "handled with oily gloves", "coolant splashed on it",
        "the washer line skipped it", "left next to the grinding station", "oil dripped from the press",
        "the blow-off nozzle is blocked", "stored uncovered", "dust from the sanding booth",
        "chips left from drilling", "lubricant overflowed", "cleaning bath overdue",
    ),
    "misalignment": (
        "the fixture needs adjusting", "the locating pin is worn", "the robot placed it off target",
        "the jig is out of adjustment", "the clamp closed too early", "assembled at an angle",
        "the guide rail has moved", "the teach point drifted", "pressed in crooked",
        "the nest is loose", "wrong shim used", "the stop block slipped",
    ),
    "missing_part": (
        "the feeder ran empty", "the step was skipped at assembly", "the bin for that part was empty",
        "the screwdriver did not cycle", "left out at the previous station", "the kit was short",
        "the operator was interrupted", "the bowl feeder jammed", "never picked by the robot",
        "the count sensor missed it", "parts shortage on the line", "the pick light did not show",
    ),
    "no_defect": (
        "the camera rejected it falsely", "the customer complaint was not confirmed",
        "the alarm was a sensor glitch", "the first check was a false call", "the gauge was dirty",
        "a reflection fooled the vision system", "wrong recipe on the tester, retested fine",
        "the tag was put on the wrong part",
    ),
}

CLASS_EFFECTS: Mapping[str, tuple[str, ...]] = {
    "scratch": (
        "thin line through the paint", "bare metal showing", "fine line visible under the lamp",
        "finish rubbed off", "a groove you can feel", "coating worn away in a stripe",
        "paint is cut", "shiny streak across the face", "anodizing broken in a line",
    ),
    "dent": (
        "surface pushed inwards", "not flat anymore", "a hollow in the sheet metal",
        "corner folded", "edge bent out of shape", "a bowl-shaped dip", "panel caved",
        "lip pressed down", "profile squashed", "light shows a dip",
    ),
    "contamination": (
        "wipes off with a cloth", "comes off on the glove", "surface feels greasy",
        "particles in the paint", "film you can smear with a finger", "loose chips rattle inside",
        "dark marks that rub away", "needs a clean", "specks stuck to the coating",
    ),
    "misalignment": (
        "doesn't line up with the frame", "gap bigger on one side", "one edge higher than the other",
        "sits at an angle", "not parallel to the edge", "holes out of register",
        "needs to be re-positioned", "edges do not match up", "leans to the left",
    ),
    "missing_part": (
        "the hole is empty", "nothing fitted there", "count is one short", "position is bare",
        "slot has nothing in it", "assembly incomplete", "thread unused", "seat is empty",
        "bag of fasteners still full",
    ),
    "no_defect": (
        "nothing to report", "measured again, fine", "all features present and in place",
        "no rework needed", "ready for shipping", "rechecked twice, good", "meets the drawing",
        "nothing abnormal", "every dimension in range",
    ),
}

CAUSE_FRAMES: tuple[str, ...] = (
    "probably {cause}", "cause: {cause}", "{cause} I think", "likely {cause}", "{cause}",
    "root cause {cause}", "seems {cause}",
)

# Plain nouns for mentioning a class in passing, mostly under a negation:
# "no scratch found, dent on rim" is a dent.
CLASS_MENTIONS: Mapping[str, tuple[str, ...]] = {
    "scratch": ("scratch", "scratches", "scuffs", "scratch marks"),
    "dent": ("dent", "dents", "dings", "deformation"),
    "contamination": ("contamination", "residue", "dirt", "oil"),
    "misalignment": ("misalignment", "gap issue", "offset", "flush issue"),
    "missing_part": ("missing parts", "missing screw", "missing clips", "missing fasteners"),
}

NEGATION_TEMPLATES: tuple[str, ...] = (
    "no {mention} found", "checked for {mention} - none", "{mention}: none",
    "no sign of {mention}", "not {mention}", "{mention} ruled out", "no {mention}",
)

# "It looked like X but it is Y": the mention is a false lead, the phrase is the finding.
FALSE_LEAD_TEMPLATES: tuple[str, ...] = (
    "looked like {mention} at first, actually {phrase}",
    "flagged as {mention} but it is {phrase}",
    "{phrase}, not {mention}",
)

# Context every class shares, so the words themselves carry no label.
HEADERS: tuple[str, ...] = (
    "P/N {pn}", "PN {pn}", "Stn {stn}", "station {stn}", "op {ini}", "insp. {ini}",
    "lot {lot}", "WO {wo}", "S/N {wo}{ini}", "P/N {pn} stn {stn}", "{ini} / stn {stn}",
)

CONTEXT_SENTENCES: tuple[str, ...] = (
    "Found at final inspection.", "Customer-facing side.", "Second one this shift.",
    "Rechecked under the light.", "Seen on incoming goods.", "Happens on this fixture sometimes.",
    "Reported by the night crew.", "Photo attached.", "Supplier batch.",
    "Noticed during packing.", "Same as yesterday.", "First article.",
    "Operator flagged it at the end of line.", "Part came off the robot cell.",
    "Checked the previous five parts too.", "Gauge check done.",
)

DISPOSITIONS: tuple[str, ...] = (
    "sent to rework", "tagged and held", "quarantined", "informed shift lead",
    "to MRB", "scrapped", "put on hold", "ticket raised", "back to line",
    "QA notified", "use as is per supervisor", "logged",
)

# Operators' short forms. Applied to whole words only.
ABBREVIATIONS: Mapping[str, tuple[str, ...]] = {
    "scratch": ("scrtch", "scr.", "scrch"), "scratched": ("scrtchd", "scr'd"),
    "scratches": ("scrs", "scratchs"), "dent": ("dnt",), "dented": ("dntd",),
    "contamination": ("cont.", "contam", "contam."), "contaminated": ("contam'd", "cont."),
    "misaligned": ("misalgn", "mis-aligned", "misalnd"), "misalignment": ("misalgn", "mis-alignment"),
    "missing": ("msng", "miss.", "mssing"), "surface": ("surf.", "srf"),
    "position": ("pos.", "posn"), "between": ("btw",), "without": ("w/o",), "with": ("w/",),
    "inspection": ("insp.",), "approximately": ("approx",), "assembly": ("assy",),
    "installed": ("instld", "inst."), "component": ("comp.", "cmpnt"), "screw": ("scrw",),
    "residue": ("resid.",), "passed": ("pssd",), "requirements": ("reqs",),
}

# Each site's own words. Central never uses them: a model trained only on central data
# has to learn them from the site's labels (which is what site learning is for).
# site-a: a US plant's slang; site-b: a German plant writing half in German;
# site-c: a Japanese plant writing shop-floor Japanese in romaji.
SITE_JARGON: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "site-a": {
        "scratch": ("road rash {loc}", "tiger stripes on the {part}", "zipper mark {loc}"),
        "dent": ("oil-canned {part}", "hail mark {loc}", "low spot on the {part}", "oil can {loc}"),
        "contamination": ("gunk {loc}", "crud on the {part}", "schmoo all over it"),
        "missing_part": ("short-shipped hardware", "screw MIA {loc}", "bare hole {loc}"),
        "no_defect": ("good to go", "clean bill", "green tag"),
    },
    "site-b": {
        "scratch": ("Kratzer {loc}", "Riefe am {part}", "Kratzer auf der Oberfläche"),
        "contamination": ("Verschmutzung {loc}", "Späne im {part}", "Ölfilm auf {part}", "Schmutz"),
        "misalignment": ("Versatz {loc}", "{part} schief", "Spaltmaß n.i.O."),
        "missing_part": ("Schraube fehlt", "Dichtung fehlt", "{part} nicht verbaut"),
        "no_defect": ("i.O.", "in Ordnung", "Prüfung i.O."),
    },
    "site-c": {
        "scratch": ("kizu {loc}", "surikizu on {part}"),
        "dent": ("dakon {loc}", "hekomi on the {part}"),
        "contamination": ("ibutsu {loc}", "yogore on {part}"),
        "misalignment": ("zure {loc}", "ichi-zure of {part}", "{part} zure ari"),
        "missing_part": ("ketsuhin", "buhin nashi {loc}", "neji nashi"),
        "no_defect": ("ijou nashi", "mondai nashi"),
    },
}

# Class mixes differ per site (non-IID): site-a paints, site-b machines, site-c assembles.
SITE_PRIORS: Mapping[str, Mapping[str, float]] = {
    "site-a": {"scratch": 0.30, "dent": 0.20, "contamination": 0.08,
               "misalignment": 0.12, "missing_part": 0.10, "no_defect": 0.20},
    "site-b": {"scratch": 0.08, "dent": 0.10, "contamination": 0.35,
               "misalignment": 0.12, "missing_part": 0.15, "no_defect": 0.20},
    "site-c": {"scratch": 0.08, "dent": 0.10, "contamination": 0.12,
               "misalignment": 0.25, "missing_part": 0.25, "no_defect": 0.20},
}

# How often a site's report uses its own word for a class that has one.
SITE_JARGON_RATE: float = 0.5
