"""Phrase tables for the shop-floor report generator.

Why so many phrasings: with 20 labels per class a bag-of-words model only sees a
fraction of the ways operators name a defect (and none of the inflections it missed:
"scuff", "scuffs", "scuffed" are three unrelated tokens to it), while a pretrained
encoder knows that "ding" and "dent" mean the same thing. The tables are wide on
purpose, list the everyday word first (the generator prefers it, as operators do),
and share their part/location vocabulary across every class.

The candidate words were screened once with all-MiniLM-L6-v2: words that a
classifier trained on all the *other* words could not place (e.g. "striation",
"overspray", "wonky") were dropped from the common tables; a few such words live on
in idioms and site jargon, where nobody is expected to guess them.

Tables are written as "a | b | c" text blocks so that a formatter keeps them compact.
Slots filled by the generator: ``{part}``, ``{loc}`` (where on it), ``{size}``,
``{noun}``, ``{state}``, ``{mention}``, ``{phrase}``.
"""

from __future__ import annotations

from collections.abc import Mapping


def _table(text: str) -> tuple[str, ...]:
    """Split a "a | b | c" block; line breaks are layout only."""
    return tuple(item.strip() for item in " ".join(text.split()).split("|") if item.strip())


def _short_forms(text: str) -> dict[str, tuple[str, ...]]:
    """Parse "word: short1, short2 | word2: short3" into a mapping."""
    forms: dict[str, tuple[str, ...]] = {}
    for entry in _table(text):
        word, shorts = entry.split(":", 1)
        forms[word.strip()] = tuple(short.strip() for short in shorts.split(","))
    return forms


# --- context every class shares, so these words carry no label -------------------

PARTS = _table("""
    housing | bracket | cover plate | side panel | flange | bezel | rim | door skin | hinge arm | lid |
    end cap | mounting plate | frame rail | valve body | pump housing | motor cover | gear case |
    front panel | back plate | heat shield | control box | fan shroud | manifold | bearing cap |
    terminal block | enclosure | chassis | battery tray | handle | top cover | base plate |
    sensor mount | connector shell
""")

LOCATIONS = _table("""
    on the left side | near the weld seam | at the upper edge | next to hole 3 | on the A-surface |
    by the label area | at the corner | on the underside | around the boss | near the datum |
    on the flange face | at pos. 2 | close to the logo | on the mating face | along the bottom edge |
    at 3 o'clock | inside the pocket | on the visible side | at the rear | by the mounting holes |
    on the outer surface | near the parting line
""")

SIZES = _table("""
    small | large | minor | slight | heavy | approx 3 mm | ~5mm | barely visible | clearly visible |
    1-2 mm | about 10 mm | several
""")

HEADERS = _table("""
    P/N {pn} | PN {pn} | Stn {stn} | station {stn} | op {ini} | insp. {ini} | lot {lot} | WO {wo} |
    S/N {wo}{ini} | P/N {pn} stn {stn} | {ini} / stn {stn}
""")

CONTEXT_SENTENCES = _table("""
    Found at final inspection. | Customer-facing side. | Second one this shift. |
    Rechecked under the light. | Seen on incoming goods. | Happens on this fixture sometimes. |
    Reported by the night crew. | Photo attached. | Supplier batch. | Noticed during packing. |
    Same as yesterday. | First article. | Operator flagged it at the end of line. |
    Part came off the robot cell. | Checked the previous five parts too. | Gauge check done.
""")

DISPOSITIONS = _table("""
    sent to rework | tagged and held | quarantined | informed shift lead | to MRB | scrapped |
    put on hold | ticket raised | back to line | QA notified | use as is per supervisor | logged
""")

# --- how a finding is written ------------------------------------------------------
# Nouns ("scuff") and states ("scuffed") per class go into patterns every class shares
# ("{noun} on the {part}", "{part} {state}"): the pattern carries no label, only the
# meaning of the word does. Idioms are whole phrasings of their own.

CLASS_NOUNS: Mapping[str, tuple[str, ...]] = {
    "scratch": _table("""
        scratch | scratches | scuff | scuffs | scuff mark | scuff marks | scrape | scrapes |
        scrape mark | gouge | gouges | abrasion | abrasions | graze | score mark | score marks |
        scoring | scuffing | scratching | hairline scratch | surface scratch | deep scratch |
        light scratch | fine scratches | nick | nicks | rub mark | rub marks | drag mark | wear marks |
        tool mark | swirl marks | chafe mark | scratch line | paint scratch | groove | scoring marks |
        key mark | scrape line
    """),
    "dent": _table("""
        dent | dents | ding | dings | indentation | indentations | dimple | dimples | depression |
        impact mark | crease | creases | buckle | buckling | kink | deformation | hollow | knock |
        dimpling | impact damage | bend | denting | dent mark | bump | dinged spot | cave-in | warp |
        warping | distortion | bulge | crush damage | pushed-in spot | flat spot
    """),
    "contamination": _table("""
        oil film | oil | residue | grease | dust | foreign particle | foreign particles | stain |
        stains | metal chips | chips | fingerprints | fingerprint | smudge | smudges | dirt | debris |
        coolant residue | lint | fibres | fibers | adhesive residue | glue residue | weld spatter |
        spatter | black specks | specks | smear | water spots | filings | soot | lubricant | particles |
        grime | contamination | contaminant | dirt particles | oil stain | grease spot |
        dust particles | sludge | slag | rust spots | paint drips | fluff
    """),
    "misalignment": _table("""
        misalignment | offset | uneven gap | flush mismatch | skew | tilt | gap variation |
        lateral shift | angular error | mismatch | out-of-square | position error | overlap |
        misalignments | gap | flushness issue | alignment error | alignment issue |
        off-centre position | shift | rotation error | wrong angle | uneven spacing |
        parallelism error | positional offset | crooked fit | misfit | misregistration
    """),
    "missing_part": _table("""
        missing screw | no gasket | absent clip | missing bolt | no washer | missing label |
        empty rivet hole | no o-ring | missing spring | missing nut | no cap | missing connector |
        no grommet | missing seal | no pin | no cable tie | missing stud | no plug | missing circlip |
        no spacer | missing fastener | missing screws | missing clips | missing component |
        missing part | absent screw | absent gasket | omitted washer | missing hardware |
        missing insert | missing rivet | no bolts | no seal | missing o-ring | lost screw |
        missing cover
    """),
}

CLASS_STATES: Mapping[str, tuple[str, ...]] = {
    "scratch": _table("""
        scratched | scuffed | scored | abraded | scraped | gouged | nicked | chafed | scratched up |
        scuffed up | scraped up | scoured | lightly scratched | badly scratched | deeply scored
    """),
    "dent": _table("""
        dented | dinged | pushed in | deformed | crushed | bent | warped | caved in | buckled |
        kinked | flattened | distorted | bowed | creased | squashed | pressed in | dimpled |
        dented in | smashed | crumpled | knocked in | bashed | caved | bulged | indented
    """),
    "contamination": _table("""
        dirty | greasy | oily | dusty | smeared | contaminated | soiled | grimy | sticky |
        covered in residue | filthy | smudged | mucky | covered in dust | covered in oil |
        coated in grease | speckled | unclean | grubby
    """),
    "misalignment": _table("""
        off-centre | off-center | off center | skewed | not flush | offset | crooked | misaligned |
        out of position | shifted | tilted | rotated | not square | sitting proud | sitting low |
        twisted | lopsided | out of true | not seated | cocked | slanted | out of line |
        out of alignment | not aligned | misplaced | angled | uneven | off-axis | not centred |
        not centered | out of place | skew-whiff
    """),
    "missing_part": _table("""
        missing its screw | without gasket | lacking a clip | short a bolt | missing the washer |
        without label | missing a rivet | without its o-ring | missing a fastener | not complete |
        without the retaining ring | missing hardware | short one nut | without seal | incomplete |
        missing a part | missing parts | without screws | lacking its seal | missing components |
        unassembled | half assembled | without its clip | missing the cover
    """),
    "no_defect": _table("""
        ok | fine | good | within spec | in tolerance | acceptable | passed | released | approved |
        in spec | perfect | flawless | satisfactory | compliant | alright | good condition |
        defect-free | to spec | intact | correct
    """),
}

NOUN_PATTERNS = _table("""
    {noun} {loc} | {noun} on the {part} | {part}: {noun} | found {noun} on the {part} |
    {part} has {noun} {loc} | {noun} seen {loc} | {noun} | {noun} on {part}
""")

# Only for findings that have a size; "2 mm missing screw" is not something anyone writes.
SIZED_NOUN_PATTERNS = _table("{size} {noun} {loc} | {size} {noun} | {noun}, {size}")
SIZED_LABELS = frozenset({"scratch", "dent", "contamination", "misalignment"})

STATE_PATTERNS = _table("""
    {part} {state} | {state} {part} | {part} {state} {loc} | {part} is {state} |
    {part} came out {state} | {state}
""")

CLASS_IDIOMS: Mapping[str, tuple[str, ...]] = {
    "scratch": _table("""
        fingernail catches on a line {loc} | coating rubbed through to bare metal |
        linear mark in the finish | paint chipped and scraped | long thin line in the coating |
        {part} got scuffed in handling | cut in the anodizing | deep scratch, can feel it |
        marred finish {loc} | hairline across the {part} | streaky wear lines on the face
    """),
    "dent": _table("""
        crushed corner | bent flange | corner knocked in | out of flat, hit mark {loc} |
        edge folded over | lip bent back | concave spot on the surface | dropped, corner squashed |
        {part} dinged in transport | bent tab {loc} | sunk area {loc}
    """),
    "contamination": _table("""
        swarf left inside | hair stuck in the paint | mould release left on |
        something sticky {loc} | blotch of lubricant | debris in the pocket |
        needs a wipe, oily {loc} | grit embedded in the paint | dust under the clear coat
    """),
    "misalignment": _table("""
        holes don't line up | step between the panels | drifted off the mark | edges not parallel |
        {part} off its locating pin | clearance uneven around the {part} | {part} angled wrong |
        gap too wide {loc} | {part} sits proud | not centred | mating edges mismatched
    """),
    "missing_part": _table("""
        empty hole where the rivet should be | one of four screws missing | insert not pressed in |
        forgot the pin | {part} shipped without its cover | only three bolts |
        screw count short by one | component omitted | incomplete assembly | bolt not fitted |
        clip absent | o-ring not installed | spring left out | cap not fitted | seal left off |
        hole empty {loc}
    """),
    "no_defect": _table("""
        within spec | passed | looks good | nothing found | no issues | OK | conforming |
        acceptable | meets requirements | clean part | no defects observed | good part | pass |
        approved | released | all dims in tolerance | visual ok | NFF | false alarm, part fine |
        re-inspected, fine | no action needed | checked, all good | no findings |
        inspection complete, ok | conforms to drawing | {part} ok after recheck |
        nothing wrong with it | good to ship | no nonconformance | as expected | accepted at final
    """),
}

# What the finding is called before it is described ("dent - panel pushed in"): the
# generic names of each class, everyday name first.
CLASS_HEADINGS: Mapping[str, tuple[str, ...]] = {
    "scratch": _table("scratch | scuff | scratches | surface scratch | scrape | abrasion | scuffing"),
    "dent": _table("dent | ding | dents | deformation | indentation | impact damage | dent damage"),
    "contamination": _table("contamination | dirt | residue | foreign material | dirty part | soiling"),
    "misalignment": _table("misalignment | offset | alignment issue | position error | fit issue | mismatch"),
    "missing_part": _table(
        "missing part | missing component | missing hardware | incomplete assy | omission"
    ),
}

# --- other classes named in passing ------------------------------------------------
# "no scratch found, dent on rim" is a dent; "looked like oil, actually a scuff" is a scratch.

CLASS_MENTIONS: Mapping[str, tuple[str, ...]] = {
    "scratch": _table("scratch | scratches | scuffs | scratch marks"),
    "dent": _table("dent | dents | dings | deformation"),
    "contamination": _table("contamination | residue | dirt | oil"),
    "misalignment": _table("misalignment | gap issue | offset | flush issue"),
    "missing_part": _table("missing parts | missing screw | missing clips | missing fasteners"),
}

NEGATION_TEMPLATES = _table("""
    no {mention} found | checked for {mention} - none | {mention}: none | no sign of {mention} |
    not {mention} | {mention} ruled out | no {mention}
""")

FALSE_LEAD_TEMPLATES = _table("""
    looked like {mention} at first, actually {phrase} | flagged as {mention} but it is {phrase} |
    {phrase}, not {mention}
""")

# Operators' short forms, applied to whole words.
ABBREVIATIONS = _short_forms("""
    scratch: scrtch, scr., scrch | scratched: scrtchd, scr'd | scratches: scrs, scratchs |
    dent: dnt | dented: dntd | contamination: cont., contam, contam. | contaminated: contam'd |
    misaligned: misalgn, mis-aligned, misalnd | misalignment: misalgn, mis-alignment |
    missing: msng, miss., mssing | surface: surf., srf | position: pos., posn | between: btw |
    without: w/o | with: w/ | inspection: insp. | approximately: approx | assembly: assy |
    installed: instld, inst. | component: comp., cmpnt | screw: scrw | residue: resid. |
    passed: pssd | requirements: reqs
""")

# --- the sites ---------------------------------------------------------------------
# Each site has words of its own for some classes, words central never uses: a model
# trained only on central data has to learn them from the site's labels (what site
# learning is for).
# site-a: a US plant's slang; site-b: a German plant writing half in German;
# site-c: a Japanese plant writing shop-floor Japanese in romaji.

SITE_JARGON: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "site-a": {
        "scratch": _table("""
            road rash {loc} | tiger stripes on the {part} | zipper mark {loc} | zippered {part} |
            rashed {part} | {part} has road rash | zipper marks
        """),
        "dent": _table("""
            oil-canned {part} | oil canning {loc} | hail mark {loc} | hail damage | low spot on the {part} |
            low spots {loc} | oil can {loc} | door ding {loc}
        """),
        "contamination": _table("""
            gunk {loc} | gunked up {part} | crud on the {part} | cruddy {part} | schmoo all over it |
            goop on the {part} | gooped up
        """),
        "missing_part": _table("""
            short-shipped hardware | screw MIA {loc} | bare hole {loc} | MIA fastener | no-show clip |
            hardware MIA
        """),
    },
    "site-b": {
        "scratch": _table("""
            Kratzer {loc} | Kratzern am {part} | {part} verkratzt | zerkratzt | Riefe am {part} |
            Riefen {loc} | Schramme {loc} | Schrammen auf der Oberfläche
        """),
        "contamination": _table("""
            Verschmutzung {loc} | verschmutzt | {part} verschmutzt | Späne im {part} | Ölfilm auf {part} |
            Schmutz | ölig | Fett {loc} | Staub {loc}
        """),
        "misalignment": _table("""
            Versatz {loc} | versetzt | {part} schief | schief eingebaut | Spaltmaß n.i.O. | Spalt zu groß |
            verdreht
        """),
        "no_defect": _table("i.O. | in Ordnung | Prüfung i.O. | alles i.O. | ohne Befund | o.B."),
    },
    "site-c": {
        "dent": _table("dakon {loc} | hekomi on the {part} | dakon ari | {part} hekomi | hekomi ari"),
        "contamination": _table("""
            ibutsu {loc} | yogore on {part} | ibutsu ari | yogore ari | abura yogore | {part} yogore
        """),
        "misalignment": _table("""
            zure {loc} | ichi-zure of {part} | {part} zure ari | ichizure | katamuki | katamuki ari
        """),
        "missing_part": _table("""
            ketsuhin | buhin nashi {loc} | neji nashi | kumitsuke more | buhin ketsuraku | neji ketsuraku
        """),
    },
}

# Each site makes its own products and heads its reports its own way: words a central
# model has never seen around the finding, even when the finding itself is plain English.
SITE_PARTS: Mapping[str, tuple[str, ...]] = {
    "site-a": _table("""
        door skin | front panel | side panel | lid | handle | top cover | bezel | hinge arm | trim strip |
        fender | hood panel | kick plate | drawer front | toe board | wrap panel
    """),
    "site-b": _table("""
        valve body | pump housing | gear case | manifold | bearing cap | flange | end cap | impeller |
        cylinder head | crankcase | spindle housing | bore cap | shaft collar | pulley | volute
    """),
    "site-c": _table("""
        connector shell | terminal block | enclosure | sensor mount | battery tray | control box |
        PCB carrier | heat sink | display frame | relay cover | harness clip | cable gland | fan shroud |
        busbar cover | DIN rail bracket
    """),
}

SITE_HEADERS: Mapping[str, tuple[str, ...]] = {
    "site-a": _table("Cell {stn} | Job {wo} | booth {stn} | tech {ini}"),
    "site-b": _table("Auftrag {wo} | Prüfer {ini} | Sachnr. {pn} | AG {stn}"),
    "site-c": _table("hinban {pn} | koutei {stn} | tantou {ini} | lot no. {lot}"),
}


def _mix(text: str) -> dict[str, float]:
    """Parse "scratch .30 | dent .20" into class shares."""
    return {label: float(share) for label, share in (entry.split() for entry in _table(text))}


# Class mixes differ per site (non-IID): site-a paints, site-b machines, site-c assembles.
SITE_PRIORS: Mapping[str, Mapping[str, float]] = {
    "site-a": _mix(
        "scratch .30 | dent .20 | contamination .08 | misalignment .12 | missing_part .10 | no_defect .20"
    ),
    "site-b": _mix(
        "scratch .08 | dent .10 | contamination .35 | misalignment .12 | missing_part .15 | no_defect .20"
    ),
    "site-c": _mix(
        "scratch .08 | dent .10 | contamination .12 | misalignment .25 | missing_part .25 | no_defect .20"
    ),
}

# How often a site's report uses its own word for a class that has one. Higher makes
# sites differ more from central; it also narrows the pretrained model's lead, since
# no pretraining knows "dakon" either.
SITE_JARGON_RATE = 0.25
