#!/usr/bin/env python3
"""Generate shopgen's bundled sample product catalog.

Writes ``sample_catalog.jsonl`` next to this script. Everything here is
fictional and written for this project. Stdlib only; all randomness comes
from ``random.Random(42)`` so the output is byte-identical on every run.

Usage:  python3 data/make_sample_catalog.py
"""
from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "sample_catalog.jsonl"
PER_CATEGORY_EN = 26  # plus one zh-CN product per category -> 27 each

rng = random.Random(42)


def pick(*alts):
    return rng.choice(alts)


def yn(p=0.5):
    return rng.random() < p


COLORS = [
    "black", "slate gray", "forest green", "olive", "sand", "navy", "sky blue",
    "burnt orange", "crimson", "charcoal", "white", "teal", "saffron", "plum",
    "moss", "rust", "ivory", "graphite", "coral", "mustard", "sage", "cobalt",
    "terracotta", "lilac", "mint", "burgundy", "stone", "ochre", "glacier blue",
    "pine", "copper", "midnight", "fog", "clay", "heather gray", "lemon",
    "juniper", "dune", "ember red", "arctic white", "lagoon", "persimmon",
]
_color_bag: list[str] = []


def color():
    """Draw colours from a shuffled bag so they spread evenly and stay rare."""
    global _color_bag
    if not _color_bag:
        _color_bag = COLORS[:]
        rng.shuffle(_color_bag)
    return _color_bag.pop()


def weighted(pairs):
    vals, weights = zip(*pairs)
    return rng.choices(vals, weights=weights, k=1)[0]


# --------------------------------------------------------------------------
# Category definitions. Each gen() returns (line, attributes, title).
# Each desc(line, brand, a) returns (intro alternatives, fact sentences).
# --------------------------------------------------------------------------

def tents():
    line = pick("Ridgeline", "Cirque", "Talus", "Larchwood", "Saddleback",
                "Fernhollow", "Moraine", "Skyhook", "Bivvy Pass", "Tarn",
                "Highmarsh", "Scree", "Outpost")
    persons = weighted([(1, 2), (2, 4), (3, 2), (4, 1)])
    season = weighted([("3-season", 4), ("4-season", 1)])
    floor = weighted([("20D ripstop nylon", 4), ("30D silnylon", 3),
                      ("polyester taffeta", 2), ("Dyneema composite fabric", 1)])
    base = 700 + persons * 450 + (600 if season == "4-season" else 0)
    if floor.startswith("Dyneema"):
        base -= 350
    a = {
        "capacity_persons": persons,
        "season_rating": season,
        "floor_material": floor,
        "pole_material": weighted([("aluminum", 5), ("carbon fiber", 1),
                                    ("fiberglass", 1)]),
        "weight_g": base + rng.randrange(0, 400, 10),
        "waterproof_rating_mm": rng.choice([1500, 2000, 3000, 3000, 5000]),
        "color": color(),
        "freestanding": yn(0.6),
    }
    if yn(0.4):
        del a["waterproof_rating_mm"]
    kind = ("Ultralight Tent" if a["weight_g"] < 1400 else
            "Expedition Tent" if season == "4-season" else
            pick("Backpacking Tent", "Camping Tent", "Trekking Tent"))
    return line, a, f"{line} {persons}P {kind}"


def tents_desc(line, brand, a):
    n = a["capacity_persons"]
    ppl = "one person" if n == 1 else f"{n} people"
    intro = [f"The {brand} {line} is a {a['season_rating']} shelter for {ppl}.",
             f"Built for {ppl}, the {line} is a {a['season_rating']} tent from {brand}.",
             f"{brand} designed the {line} as a {a['season_rating']} tent that sleeps {ppl}."]
    facts = [
        pick(f"It weighs {a['weight_g']} grams in total.",
             f"On the scale it comes in at {a['weight_g']} g."),
        pick(f"The floor is made from {a['floor_material']}.",
             f"{a['floor_material'].capitalize()} forms the floor."),
        pick(f"The frame uses {a['pole_material']} poles.",
             f"It pitches on {a['pole_material']} poles."),
        pick(f"The fabric comes in {a['color']}.",
             f"This version is finished in {a['color']}."),
        (pick("The design is freestanding, so it holds its shape before staking.",
              "Because it is freestanding, it can stand on its own once the poles are in.")
         if a["freestanding"] else
         pick("It is a non-freestanding design and is pitched with stakes.",
              "This is not a freestanding tent, so plan on staking it out.")),
    ]
    if "waterproof_rating_mm" in a:
        facts.append(pick(
            f"The fabric carries a {a['waterproof_rating_mm']} mm waterproof rating.",
            f"Its waterproof rating is {a['waterproof_rating_mm']} mm."))
    return intro, facts


def sleeping_bags():
    line = pick("Halden", "Nightjar", "Snowberry", "Emberfall", "Drowse",
                "Quietpeak", "Loft", "Dusk Hollow", "Sorrel", "Glimmer",
                "Owlcreek", "Hearthstone")
    fill = weighted([("650-fill duck down", 3), ("800-fill goose down", 2),
                     ("synthetic polyester insulation", 3),
                     ("recycled synthetic insulation", 2),
                     ("merino wool and down blend", 1)])
    shape = weighted([("mummy", 4), ("semi-rectangular", 2),
                      ("rectangular", 2), ("quilt", 1)])
    temp = rng.choice([-18, -12, -9, -7, -4, -1, 2, 5, 7, 10])
    down = "down" in fill
    w = 600 + (10 - temp) * 35 + (0 if down else 350) + rng.randrange(0, 200, 10)
    a = {
        "temperature_rating_c": temp,
        "fill": fill,
        "shape": shape,
        "length": weighted([("regular", 4), ("long", 2), ("short", 1)]),
        "weight_g": w,
        "color": color(),
    }
    if shape != "quilt":
        a["zipper_side"] = pick("left", "right")
    if yn(0.3):
        a["compression_sack_included"] = yn(0.7)
    fill_word = "Down" if down else "Synthetic"
    if fill.startswith("merino"):
        fill_word = "Merino-Down"
    noun = "Sleeping Quilt" if shape == "quilt" else f"{shape.title()} Sleeping Bag"
    return line, a, f"{line} {temp}°C {fill_word} {noun}"


def sleeping_bags_desc(line, brand, a):
    t = a["temperature_rating_c"]
    intro = [f"The {brand} {line} is a {a['shape']} sleeping bag rated to {t}°C.",
             f"Rated to {t}°C, the {line} is a {a['shape']}-shaped bag from {brand}.",
             f"{brand}'s {line} is a {a['length']}-length {a['shape']} bag with a {t}°C rating."]
    if a["shape"] == "quilt":
        intro = [f"The {brand} {line} is a sleeping quilt rated to {t}°C.",
                 f"Rated to {t}°C, the {line} quilt comes from {brand}."]
    facts = [
        pick(f"It is insulated with {a['fill']}.",
             f"Warmth comes from {a['fill']}."),
        pick(f"The bag weighs {a['weight_g']} g.",
             f"Total weight is {a['weight_g']} grams."),
        pick(f"It is cut in a {a['length']} length.",
             f"This is the {a['length']} length version."),
        pick(f"The shell is {a['color']}.", f"It comes in {a['color']}."),
    ]
    if "zipper_side" in a:
        facts.append(pick(f"The zipper runs down the {a['zipper_side']} side.",
                          f"It has a {a['zipper_side']}-side zipper."))
    if "compression_sack_included" in a:
        facts.append("A compression sack is included." if a["compression_sack_included"]
                     else "It does not ship with a compression sack.")
    return intro, facts


def backpacks():
    line = pick("Trailhead", "Switchback", "Kestrel", "Alder", "Cairn Runner",
                "Longhaul", "Basecamp", "Wayfarer", "Lichen", "Crestline",
                "Portage", "Foxglove", "Summit Day")
    cap = rng.choice([18, 22, 24, 28, 30, 35, 40, 45, 50, 55, 60, 65, 70])
    mat = weighted([("210D ripstop nylon", 4), ("420D nylon", 3),
                    ("recycled polyester", 3), ("X-Pac laminate", 1),
                    ("waxed canvas", 1), ("Dyneema composite fabric", 1)])
    a = {
        "capacity_l": cap,
        "material": mat,
        "weight_g": 500 + cap * 22 + rng.randrange(0, 300, 10),
        "color": color(),
        "torso_size": weighted([("S/M", 2), ("M/L", 2), ("one size", 3)]),
    }
    if yn(0.7):
        a["hydration_compatible"] = yn(0.7)
    if cap >= 35 and yn(0.6):
        a["rain_cover_included"] = yn(0.5)
    if yn(0.3):
        a["hip_belt_pockets"] = rng.choice([0, 1, 2])
    kind = ("Daypack" if cap <= 30 else "Trekking Pack" if cap <= 50
            else "Expedition Pack")
    if mat == "waxed canvas":
        kind = "Waxed Canvas " + kind
    return line, a, f"{line} {cap}L {kind}"


def backpacks_desc(line, brand, a):
    c = a["capacity_l"]
    intro = [f"The {brand} {line} is a {c}-liter pack.",
             f"With {c} liters of space, the {line} is a pack from {brand}.",
             f"{brand} built the {line} around a {c} L main volume."]
    facts = [
        pick(f"It is made from {a['material']}.",
             f"The body is sewn from {a['material']}."),
        pick(f"Empty, it weighs {a['weight_g']} g.",
             f"The pack weighs {a['weight_g']} grams."),
        pick(f"It comes in {a['color']}.", f"This colorway is {a['color']}."),
        ("It comes in a single size." if a["torso_size"] == "one size" else
         pick(f"This version fits a {a['torso_size']} torso.",
              f"The harness is sized {a['torso_size']}.")),
    ]
    if "hydration_compatible" in a:
        facts.append(pick("It is compatible with a hydration reservoir.",
                          "There is room for a hydration bladder.")
                     if a["hydration_compatible"] else
                     "It is not set up for a hydration reservoir.")
    if "rain_cover_included" in a:
        facts.append("A rain cover is included." if a["rain_cover_included"]
                     else "A rain cover is not included.")
    if "hip_belt_pockets" in a:
        n = a["hip_belt_pockets"]
        facts.append("The hip belt has no pockets." if n == 0 else
                     f"The hip belt has {n} pocket{'s' if n > 1 else ''}.")
    return intro, facts


def headlamps():
    line = pick("Lumen Trail", "Nightowl", "Beacon", "Firefly", "Starling",
                "Glowworm", "Dawnpatrol", "Lantern Peak", "Vesper", "Pathfinder",
                "Moonrise", "Spark")
    lumens = rng.choice([150, 200, 300, 350, 400, 500, 600, 800, 1000, 1200])
    rech = yn(0.65)
    a = {"lumens": lumens}
    if rech:
        a["battery_type"] = "rechargeable Li-ion"
        a["battery_mah"] = rng.choice([800, 1200, 1500, 1800, 2200, 3000])
    else:
        a["battery_type"] = pick("3x AAA", "2x AA", "1x CR123A")
    a["beam_distance_m"] = int(lumens ** 0.5 * 5.5) + rng.randrange(0, 20)
    a["waterproof_rating"] = weighted([("IPX4", 3), ("IPX6", 2), ("IPX7", 2),
                                       ("IP68", 1)])
    a["weight_g"] = 40 + lumens // 20 + rng.randrange(0, 40)
    a["red_light"] = yn(0.6)
    a["color"] = color()
    if yn(0.35):
        a["body_material"] = weighted([("polycarbonate", 3), ("aluminum", 2),
                                       ("titanium", 1)])
    tag = "Rechargeable" if rech else pick("Compact", "Trail", "Camp")
    return line, a, f"{line} {lumens} Lumen {tag} Headlamp"


def headlamps_desc(line, brand, a):
    intro = [f"The {brand} {line} is a {a['lumens']}-lumen headlamp.",
             f"Putting out {a['lumens']} lumens, the {line} is a headlamp from {brand}.",
             f"{brand}'s {line} headlamp has a maximum output of {a['lumens']} lumens."]
    if "battery_mah" in a:
        bat = pick(f"It runs on a {a['battery_mah']} mAh rechargeable Li-ion battery.",
                   f"Power comes from a rechargeable {a['battery_mah']} mAh Li-ion cell.")
    else:
        bat = pick(f"It takes {a['battery_type']} batteries.",
                   f"It runs on {a['battery_type']} batteries.")
    facts = [
        bat,
        pick(f"The beam reaches {a['beam_distance_m']} meters.",
             f"Beam distance is {a['beam_distance_m']} m."),
        pick(f"It is rated {a['waterproof_rating']} for water resistance.",
             f"The housing carries an {a['waterproof_rating']} rating."
             if a["waterproof_rating"].startswith("I") else ""),
        pick(f"It weighs {a['weight_g']} g.", f"The lamp weighs {a['weight_g']} grams."),
        ("It includes a red light mode." if a["red_light"]
         else "It has no red light mode."),
        pick(f"The housing is {a['color']}.", f"It comes in {a['color']}."),
    ]
    if "body_material" in a:
        facts.append(pick(f"The body is made of {a['body_material']}.",
                          f"Its housing is {a['body_material']}."))
    return intro, facts


def cookware():
    line = pick("Hearth", "Emberline", "Copperleaf", "Millstone", "Skillet Row",
                "Fireside", "Bramble", "Kiln", "Provence", "Saltmarsh", "Tallow",
                "Cinder")
    item = pick("frying pan", "saucepan", "dutch oven", "stockpot", "wok",
                "saute pan", "kettle", "grill pan")
    mat = weighted([("cast iron", 3), ("enameled cast iron", 2),
                    ("tri-ply stainless steel", 3), ("hard-anodized aluminum", 2),
                    ("carbon steel", 2), ("titanium", 1),
                    ("copper-core stainless steel", 1)])
    if item == "dutch oven" and mat not in ("cast iron", "enameled cast iron"):
        mat = pick("cast iron", "enameled cast iron")
    a = {"item_type": item, "material": mat}
    if item in ("frying pan", "wok", "saute pan", "grill pan"):
        a["diameter_cm"] = rng.choice([20, 24, 26, 28, 30, 32])
        size = f"{a['diameter_cm']} cm"
    else:
        a["capacity_l"] = rng.choice([1.0, 1.5, 2.0, 3.0, 4.5, 5.5, 7.0])
        size = f"{a['capacity_l']:g} L"
    heavy = "cast iron" in mat
    a["weight_g"] = (2600 if heavy else 900) + rng.randrange(0, 1600, 10)
    if mat == "titanium":
        a["weight_g"] = 180 + rng.randrange(0, 200, 5)
    a["induction_compatible"] = mat not in ("hard-anodized aluminum", "titanium") and yn(0.9)
    if mat in ("hard-anodized aluminum", "tri-ply stainless steel") and yn(0.5):
        a["coating"] = pick("ceramic nonstick", "PTFE nonstick")
    a["oven_safe_c"] = rng.choice([200, 230, 260, 260, 300])
    if mat == "enameled cast iron" or yn(0.25):
        a["color"] = color()
    return line, a, f"{line} {size} {mat.title()} {item.title()}"


def cookware_desc(line, brand, a):
    it, m = a["item_type"], a["material"]
    intro = [f"The {brand} {line} is a {m} {it}.",
             f"{brand} makes the {line} {it} from {m}.",
             f"This {line} {it} from {brand} is made of {m}."]
    facts = [
        (pick(f"It measures {a['diameter_cm']} cm across.",
              f"The cooking surface is {a['diameter_cm']} cm in diameter.")
         if "diameter_cm" in a else
         pick(f"It holds {a['capacity_l']:g} liters.",
              f"Capacity is {a['capacity_l']:g} L.")),
        pick(f"It weighs {a['weight_g']} g.", f"The {it} weighs {a['weight_g']} grams."),
        ("It works on induction cooktops." if a["induction_compatible"]
         else "It is not compatible with induction cooktops."),
        pick(f"It is oven safe up to {a['oven_safe_c']}°C.",
             f"You can put it in the oven at up to {a['oven_safe_c']}°C."),
    ]
    if "coating" in a:
        facts.append(pick(f"The interior has a {a['coating']} coating.",
                          f"Inside, it is finished with a {a['coating']} coating."))
    if "color" in a:
        facts.append(pick(f"The exterior is {a['color']}.",
                          f"It comes in {a['color']}."))
    return intro, facts


def running_shoes():
    line = pick("Stride", "Tempo", "Fleetfoot", "Gravel Dash", "Cadence",
                "Kinetic", "Ridgerunner", "Pacer", "Swiftwater", "Longmile",
                "Hummingbird", "Loam")
    ver = rng.randint(1, 6)
    terrain = weighted([("road", 4), ("trail", 3), ("track", 1)])
    gender = weighted([("men's", 3), ("women's", 3), ("unisex", 1)])
    a = {
        "terrain": terrain,
        "gender": gender,
        "heel_drop_mm": rng.choice([0, 4, 5, 6, 8, 10, 12]),
        "stack_height_mm": rng.randrange(18, 42),
        "weight_g": rng.randrange(190, 340, 5),
        "upper_material": weighted([("engineered mesh", 4), ("knit", 3),
                                    ("recycled mesh", 2),
                                    ("merino wool knit", 1)]),
        "color": color(),
    }
    if terrain == "trail" and yn(0.5):
        a["lug_depth_mm"] = rng.choice([3, 4, 5, 6])
    if yn(0.3):
        a["waterproof"] = yn(0.5)
    if yn(0.3):
        a["width"] = pick("standard", "wide")
    g = {"men's": "Men's", "women's": "Women's", "unisex": "Unisex"}[gender]
    noun = {"road": "Road Running Shoe", "trail": "Trail Running Shoe",
            "track": "Track Spike"}[terrain]
    return line, a, f"{line} {ver} {g} {noun}"


def running_shoes_desc(line, brand, a):
    t, g = a["terrain"], a["gender"]
    intro = [f"The {brand} {line} is a {g} {t} running shoe.",
             f"{brand} designed the {line} as a {g} shoe for {t} running.",
             f"Made for {t} running, the {line} is a {g} model from {brand}."]
    facts = [
        pick(f"It has a {a['heel_drop_mm']} mm heel-to-toe drop.",
             f"Heel drop is {a['heel_drop_mm']} mm."),
        pick(f"The stack height is {a['stack_height_mm']} mm.",
             f"It sits on a {a['stack_height_mm']} mm stack."),
        pick(f"Each shoe weighs {a['weight_g']} g.",
             f"A single shoe comes in at {a['weight_g']} grams."),
        pick(f"The upper is {a['upper_material']}.",
             f"It uses a {a['upper_material']} upper."),
        pick(f"This colorway is {a['color']}.", f"It comes in {a['color']}."),
    ]
    if "lug_depth_mm" in a:
        facts.append(f"The outsole has {a['lug_depth_mm']} mm lugs.")
    if "waterproof" in a:
        facts.append("It is waterproof." if a["waterproof"]
                     else "It is not waterproof.")
    if "width" in a:
        facts.append(f"This is the {a['width']} width.")
    return intro, facts


def rain_jackets():
    line = pick("Downpour", "Squall", "Drizzle", "Stormfront", "Monsoon",
                "Rainshadow", "Petrichor", "Cloudburst", "Mistral", "Tidewater",
                "Graupel", "Nimbus")
    layers = pick("2.5-layer", "2.5-layer", "3-layer", "3-layer", "2-layer")
    mat = weighted([(f"{layers} nylon", 4), (f"{layers} polyester", 3),
                    (f"{layers} recycled nylon", 2), ("waxed cotton", 1)])
    gender = weighted([("men's", 3), ("women's", 3), ("unisex", 1)])
    a = {
        "gender": gender,
        "material": mat,
        "waterproof_rating_mm": rng.choice([10000, 15000, 20000, 28000]),
        "breathability_g_m2": rng.choice([10000, 15000, 20000, 25000]),
        "weight_g": rng.randrange(190, 520, 10),
        "hood": pick("adjustable", "stowable", "helmet-compatible", "fixed"),
        "color": color(),
    }
    if mat == "waxed cotton":
        del a["breathability_g_m2"]
        a["weight_g"] += 500
    if yn(0.5):
        a["pit_zips"] = yn(0.6)
    g = {"men's": "Men's", "women's": "Women's", "unisex": "Unisex"}[gender]
    tag = ("Waxed Cotton" if mat == "waxed cotton"
           else layers.replace("-layer", "L"))
    noun = pick("Rain Jacket", "Rain Shell", "Waterproof Jacket")
    return line, a, f"{line} {g} {tag} {noun}"


def rain_jackets_desc(line, brand, a):
    g, m = a["gender"], a["material"]
    intro = [f"The {brand} {line} is a {g} rain jacket made from {m}.",
             f"{brand}'s {line} is a {g} shell built from {m}.",
             f"Made from {m}, the {line} is a {g} rain jacket by {brand}."]
    facts = [
        pick(f"The fabric is rated to {a['waterproof_rating_mm']} mm waterproof.",
             f"It carries a {a['waterproof_rating_mm']} mm waterproof rating."),
        pick(f"The jacket weighs {a['weight_g']} g.", f"It weighs {a['weight_g']} grams."),
        pick(f"It has a {a['hood']} hood.", f"The hood is {a['hood']}."),
        pick(f"It comes in {a['color']}.", f"This version is {a['color']}."),
    ]
    if "breathability_g_m2" in a:
        facts.append(pick(
            f"Breathability is rated at {a['breathability_g_m2']} g/m².",
            f"The membrane is rated for {a['breathability_g_m2']} g/m² of breathability."))
    if "pit_zips" in a:
        facts.append("It has pit zips for venting." if a["pit_zips"]
                     else "It does not have pit zips.")
    return intro, facts


def water_bottles():
    line = pick("Wellspring", "Brook", "Aquifer", "Riffle", "Canteen Co",
                "Oasis", "Rill", "Fjord", "Cascade", "Sipwell", "Meltwater",
                "Pebble")
    mat = weighted([("18/8 stainless steel", 5), ("Tritan plastic", 3),
                    ("borosilicate glass", 2), ("aluminum", 1),
                    ("titanium", 1), ("silicone", 1)])
    cap = rng.choice([350, 500, 600, 750, 946, 1000, 1200, 1500, 2000])
    insulated = mat == "18/8 stainless steel" and yn(0.75)
    a = {
        "capacity_ml": cap,
        "material": mat,
        "insulated": insulated,
        "lid_type": pick("straw lid", "chug cap", "screw cap", "flip spout",
                         "sport cap"),
        "weight_g": int(cap * (0.38 if insulated else 0.17)) + rng.randrange(20, 90),
        "color": color(),
    }
    if insulated:
        a["keeps_cold_h"] = rng.choice([12, 18, 24, 36])
    if mat == "silicone":
        a["collapsible"] = True
    if yn(0.4):
        a["dishwasher_safe"] = yn(0.6)
    tag = "Insulated" if insulated else ("Collapsible" if mat == "silicone"
                                         else mat.split()[-2 if mat.endswith("steel") else 0].title())
    if mat == "titanium":
        tag = "Titanium"
    if mat == "borosilicate glass":
        tag = "Glass"
    return line, a, f"{line} {cap} ml {tag} Water Bottle"


def water_bottles_desc(line, brand, a):
    c, m = a["capacity_ml"], a["material"]
    intro = [f"The {brand} {line} is a {c} ml bottle made from {m}.",
             f"{brand}'s {line} holds {c} ml and is made of {m}.",
             f"Made from {m}, the {line} bottle from {brand} holds {c} ml."]
    facts = [
        pick(f"It has a {a['lid_type']}.", f"It closes with a {a['lid_type']}."),
        pick(f"Empty, it weighs {a['weight_g']} g.", f"It weighs {a['weight_g']} grams."),
        pick(f"It comes in {a['color']}.", f"The finish is {a['color']}."),
    ]
    if a["insulated"]:
        facts.append(pick(
            f"Its insulated walls keep drinks cold for up to {a['keeps_cold_h']} hours.",
            f"It is insulated and keeps drinks cold for {a['keeps_cold_h']} hours."))
    else:
        facts.append("It is not insulated.")
    if a.get("collapsible"):
        facts.append("The bottle is collapsible.")
    if "dishwasher_safe" in a:
        facts.append("It is dishwasher safe." if a["dishwasher_safe"]
                     else "It is not dishwasher safe, so wash it by hand.")
    return intro, facts


def yoga_mats():
    line = pick("Lotus", "Groundwork", "Stillwater", "Sun Salute", "Balance",
                "Driftwood", "Anchor", "Prana Field", "Seedling", "Tideline",
                "Willow", "Hush")
    mat = weighted([("natural rubber", 4), ("TPE", 3), ("PU and rubber", 2),
                    ("cork", 1), ("jute", 1), ("organic cotton", 1)])
    th = rng.choice([1.5, 3.0, 4.0, 4.5, 5.0, 6.0, 8.0])
    length = rng.choice([173, 183, 183, 188, 200])
    width = rng.choice([61, 66, 68])
    a = {
        "material": mat,
        "thickness_mm": th,
        "dimensions_cm": f"{length} x {width}",
        "weight_g": int(length * width * th * 0.11) + rng.randrange(0, 300, 10),
        "color": color(),
    }
    if yn(0.6):
        a["texture"] = pick("ribbed", "smooth", "grip-textured", "embossed")
    if yn(0.4):
        a["alignment_lines"] = yn(0.6)
    if yn(0.35):
        a["carry_strap_included"] = yn(0.6)
    tag = pick("Yoga Mat", "Yoga Mat", "Practice Mat")
    if th <= 1.5:
        tag = "Travel Yoga Mat"
    mat_t = {"TPE": "TPE", "PU and rubber": "PU"}.get(mat, mat.title())
    return line, a, f"{line} {th:g}mm {mat_t} {tag}"


def yoga_mats_desc(line, brand, a):
    m, th = a["material"], a["thickness_mm"]
    intro = [f"The {brand} {line} is a {th:g} mm yoga mat made from {m}.",
             f"{brand}'s {line} mat is {th:g} mm thick and made of {m}.",
             f"Made from {m}, the {line} is a {th:g} mm mat from {brand}."]
    facts = [
        pick(f"It measures {a['dimensions_cm']} cm.",
             f"Its dimensions are {a['dimensions_cm']} cm."),
        pick(f"The mat weighs {a['weight_g']} g.", f"It weighs {a['weight_g']} grams."),
        pick(f"It comes in {a['color']}.", f"The color is {a['color']}."),
    ]
    if "texture" in a:
        facts.append(pick(f"The surface is {a['texture']}.",
                          f"It has a {a['texture']} surface."))
    if "alignment_lines" in a:
        facts.append("Alignment lines are printed on the surface."
                     if a["alignment_lines"] else "It has no alignment lines.")
    if "carry_strap_included" in a:
        facts.append("A carry strap is included." if a["carry_strap_included"]
                     else "It does not come with a carry strap.")
    return intro, facts


def knives():
    line = pick("Kiri", "Whetstone", "Ironbark", "Ashgrove", "Tanto Row",
                "Edgewood", "Hagane", "Foundry", "Sable", "Quillon", "Marrow",
                "Flint")
    kt = pick("chef's knife", "santoku", "paring knife", "bread knife",
              "nakiri", "boning knife", "utility knife", "cleaver")
    lengths = {"chef's knife": [18, 20, 21, 24], "santoku": [16, 17, 18],
               "paring knife": [8, 9, 10], "bread knife": [20, 23, 25],
               "nakiri": [16, 17, 18], "boning knife": [13, 15, 16],
               "utility knife": [12, 13, 15], "cleaver": [17, 18, 20]}
    steel = weighted([("VG-10 stainless steel", 3), ("X50CrMoV15 stainless steel", 3),
                      ("high-carbon stainless steel", 3), ("Damascus steel", 1),
                      ("carbon steel", 2), ("ceramic", 1)])
    bl = rng.choice(lengths[kt])
    a = {
        "knife_type": kt,
        "blade_length_cm": bl,
        "blade_material": steel,
        "handle_material": weighted([("pakkawood", 3), ("G10", 2), ("olive wood", 1),
                                     ("walnut", 1), ("bamboo", 1), ("micarta", 1),
                                     ("stainless steel", 1), ("POM", 2)]),
        "weight_g": bl * 9 + rng.randrange(0, 80, 5),
    }
    if steel != "ceramic":
        a["hardness_hrc"] = rng.choice([56, 58, 59, 60, 61, 62])
    if yn(0.4):
        a["sheath_included"] = yn(0.6)
    if yn(0.25):
        a["bevel"] = pick("double", "single")
    name = kt.title().replace("Chef'S", "Chef's")
    tag = {"VG-10 stainless steel": "VG-10", "X50CrMoV15 stainless steel": "German Steel",
           "high-carbon stainless steel": "High-Carbon", "Damascus steel": "Damascus",
           "carbon steel": "Carbon Steel", "ceramic": "Ceramic"}[steel]
    return line, a, f"{line} {bl} cm {tag} {name}"


def knives_desc(line, brand, a):
    kt, bl = a["knife_type"], a["blade_length_cm"]
    intro = [f"The {brand} {line} is a {bl} cm {kt}.",
             f"{brand}'s {line} is a {kt} with a {bl} cm blade.",
             f"With a {bl} cm blade, the {line} is a {kt} from {brand}."]
    facts = [
        pick(f"The blade is made from {a['blade_material']}.",
             f"It is forged from {a['blade_material']}."
             if a["blade_material"] != "ceramic" else "The blade is ceramic."),
        pick(f"The handle is {a['handle_material']}.",
             f"It has a {a['handle_material']} handle."),
        pick(f"It weighs {a['weight_g']} g.", f"The knife weighs {a['weight_g']} grams."),
    ]
    if "hardness_hrc" in a:
        facts.append(pick(f"The steel is hardened to {a['hardness_hrc']} HRC.",
                          f"Blade hardness is {a['hardness_hrc']} HRC."))
    if "sheath_included" in a:
        facts.append("A sheath is included." if a["sheath_included"]
                     else "It does not come with a sheath.")
    if "bevel" in a:
        facts.append(f"The edge has a {a['bevel']} bevel.")
    return intro, facts


def desk_lamps():
    line = pick("Lumiere", "Studio Arc", "Quill", "Night Reader", "Atelier",
                "Halo", "Ledger", "Crane", "Ember Desk", "Margin", "Folio",
                "Penumbra")
    w = rng.choice([5, 6, 8, 10, 12, 15])
    a = {
        "wattage": w,
        "lumens": w * rng.choice([70, 80, 90, 100]),
        "color_temperature_k": pick("2700-6500", "3000-6000", "2700", "3000",
                                    "4000", "2200-5000"),
        "arm_type": pick("swing arm", "gooseneck", "architect", "fixed",
                         "clamp-on"),
        "material": weighted([("aluminum", 3), ("powder-coated steel", 3),
                              ("walnut and steel", 1), ("bamboo", 1),
                              ("concrete", 1), ("ABS plastic", 2)]),
        "color": color(),
    }
    if yn(0.6):
        a["dimmable"] = yn(0.75)
    if yn(0.5):
        a["usb_charging_port"] = yn(0.6)
    if yn(0.4):
        a["power_source"] = pick("USB-C", "AC adapter")
    tag = pick("LED Desk Lamp", "Desk Lamp", "Task Lamp")
    arm = a["arm_type"].title()
    return line, a, f"{line} {w}W {arm} {tag}"


def desk_lamps_desc(line, brand, a):
    intro = [f"The {brand} {line} is a {a['wattage']} W {a['arm_type']} desk lamp.",
             f"{brand}'s {line} is a {a['arm_type']} lamp that draws {a['wattage']} W.",
             f"Drawing {a['wattage']} W, the {line} is a {a['arm_type']} desk lamp from {brand}."]
    ct = a["color_temperature_k"]
    facts = [
        pick(f"It puts out {a['lumens']} lumens.", f"Light output is {a['lumens']} lumens."),
        (f"Color temperature adjusts from {ct.replace('-', ' K to ')} K."
         if "-" in ct else f"The light has a color temperature of {ct} K."),
        pick(f"It is made of {a['material']}.", f"The body is {a['material']}."),
        pick(f"It comes in {a['color']}.", f"The finish is {a['color']}."),
    ]
    if "dimmable" in a:
        facts.append("The light is dimmable." if a["dimmable"]
                     else "It is not dimmable.")
    if "usb_charging_port" in a:
        facts.append("The base has a USB charging port." if a["usb_charging_port"]
                     else "There is no USB charging port.")
    if "power_source" in a:
        facts.append(f"It is powered by {'a USB-C connection' if a['power_source'] == 'USB-C' else 'an AC adapter'}.")
    return intro, facts


def speakers():
    line = pick("Echo Ridge", "Boombox Mini", "Soundwave", "Campfire", "Resonate",
                "Tidepool", "Murmur", "Basslake", "Chirp", "Overtone", "Decibel",
                "Hollow Log")
    out = rng.choice([5, 8, 10, 16, 20, 30, 40, 60])
    a = {
        "output_w": out,
        "battery_mah": rng.choice([1500, 2000, 2600, 3600, 4400, 5200, 7800]),
        "playtime_h": rng.choice([8, 10, 12, 15, 20, 24, 30]),
        "waterproof_rating": pick("IPX4", "IPX5", "IPX7", "IP67"),
        "bluetooth_version": pick("5.0", "5.1", "5.3", "5.4"),
        "weight_g": 150 + out * 18 + rng.randrange(0, 150, 5),
        "color": color(),
    }
    if yn(0.4):
        a["shell_material"] = weighted([("fabric", 3), ("silicone", 2),
                                        ("aluminum", 2), ("cork", 1), ("bamboo", 1)])
    if yn(0.3) and len(a) < 8:
        a["stereo_pairing"] = yn(0.7)
    tag = "Waterproof" if a["waterproof_rating"] in ("IPX7", "IP67") else "Portable"
    return line, a, f"{line} {out}W {tag} Bluetooth Speaker"


def speakers_desc(line, brand, a):
    intro = [f"The {brand} {line} is a {a['output_w']} W Bluetooth speaker.",
             f"{brand}'s {line} is a portable Bluetooth speaker with {a['output_w']} W of output.",
             f"With {a['output_w']} W of output, the {line} is a Bluetooth speaker from {brand}."]
    facts = [
        pick(f"Its {a['battery_mah']} mAh battery is rated for {a['playtime_h']} hours of playback.",
             f"A {a['battery_mah']} mAh battery gives up to {a['playtime_h']} hours of play time."),
        pick(f"It is rated {a['waterproof_rating']}.",
             f"The housing carries an {a['waterproof_rating']} rating."),
        pick(f"It connects over Bluetooth {a['bluetooth_version']}.",
             f"It uses Bluetooth {a['bluetooth_version']}."),
        pick(f"It weighs {a['weight_g']} g.", f"The speaker weighs {a['weight_g']} grams."),
        pick(f"It comes in {a['color']}.", f"This version is {a['color']}."),
    ]
    if "shell_material" in a:
        facts.append(pick(f"The shell is wrapped in {a['shell_material']}.",
                          f"Its outer shell is {a['shell_material']}."))
    if "stereo_pairing" in a:
        facts.append("Two units can be paired for stereo sound." if a["stereo_pairing"]
                     else "It does not support stereo pairing.")
    return intro, facts


CATEGORIES = [
    # name, sku code, generator, description builder, brands, price range USD
    ("Tents", "TNT", tents, tents_desc,
     ["Northpine", "Kelda", "Fjellsund", "Outcrop"], (129, 649)),
    ("Sleeping Bags", "SLB", sleeping_bags, sleeping_bags_desc,
     ["Northpine", "Kelda", "Driftwell", "Emberly"], (79, 499)),
    ("Backpacks", "BPK", backpacks, backpacks_desc,
     ["Outcrop", "Tallgrass", "Fjellsund", "Wanderkin"], (49, 329)),
    ("Headlamps", "HLM", headlamps, headlamps_desc,
     ["Brightfern", "Northpine", "Vireo", "Outcrop"], (19, 119)),
    ("Cookware", "CKW", cookware, cookware_desc,
     ["Copperfield & Co", "Hearthmade", "Ferrowick", "Kelda"], (29, 349)),
    ("Running Shoes", "RUN", running_shoes, running_shoes_desc,
     ["Tallgrass", "Swiftline", "Marrowfield", "Vireo"], (89, 219)),
    ("Rain Jackets", "RJK", rain_jackets, rain_jackets_desc,
     ["Driftwell", "Fjellsund", "Greywether", "Wanderkin"], (79, 389)),
    ("Water Bottles", "WBT", water_bottles, water_bottles_desc,
     ["Aquila", "Brightfern", "Tallgrass", "Kelda"], (12, 59)),
    ("Yoga Mats", "YGM", yoga_mats, yoga_mats_desc,
     ["Saltbloom", "Mossway", "Emberly", "Aquila"], (24, 159)),
    ("Kitchen Knives", "KNF", knives, knives_desc,
     ["Ferrowick", "Hanaori", "Copperfield & Co", "Hearthmade"], (25, 289)),
    ("Desk Lamps", "DLM", desk_lamps, desk_lamps_desc,
     ["Lumenhaus", "Mossway", "Quillon Works", "Vireo"], (29, 229)),
    ("Bluetooth Speakers", "SPK", speakers, speakers_desc,
     ["Soundmoth", "Lumenhaus", "Greywether", "Brightfern"], (29, 249)),
]

# One hand-written zh-CN product per category (attribute values in Chinese).
ZH = {
    "Tents": ("岭风", "北松 岭风 双人超轻帐篷", {
        "capacity_persons": 2, "season_rating": "三季", "floor_material": "20D 防撕裂尼龙",
        "pole_material": "铝合金", "weight_g": 1380, "color": "雾灰色", "freestanding": True},
        "北松岭风是一款三季双人帐篷，整体重量为 1380 克。底布采用 20D 防撕裂尼龙，"
        "撑杆为铝合金材质。帐篷为自立式结构，装好撑杆后即可立起。外帐颜色为雾灰色。", 389.0),
    "Sleeping Bags": ("暖巢", "科尔达 暖巢 -5°C 羽绒木乃伊睡袋", {
        "temperature_rating_c": -5, "fill": "650 蓬鸭绒", "shape": "木乃伊形",
        "length": "常规", "weight_g": 1150, "color": "藏青色", "zipper_side": "左侧"},
        None, 699.0),
    "Backpacks": ("远径", "奥特克 远径 40L 徒步背包", {
        "capacity_l": 40, "material": "再生聚酯纤维", "weight_g": 1320,
        "color": "橄榄绿", "torso_size": "均码", "hydration_compatible": True},
        "奥特克远径是一款 40 升的徒步背包，主体采用再生聚酯纤维制成，空包重量为 1320 克。"
        "背包为均码设计，可放置水袋。本款颜色为橄榄绿。", 459.0),
    "Headlamps": ("萤光", "亮蕨 萤光 400 流明充电头灯", {
        "lumens": 400, "battery_type": "可充电锂电池", "battery_mah": 1500,
        "beam_distance_m": 110, "waterproof_rating": "IPX6", "weight_g": 72,
        "red_light": True, "color": "橙色"}, None, 169.0),
    "Cookware": ("炉边", "铁威克 炉边 28 厘米铸铁煎锅", {
        "item_type": "煎锅", "material": "铸铁", "diameter_cm": 28, "weight_g": 3100,
        "induction_compatible": True, "oven_safe_c": 260},
        "铁威克炉边是一口铸铁煎锅，锅口直径 28 厘米，重量为 3100 克。"
        "这口锅可用于电磁炉，也可放入烤箱，耐受温度最高为 260°C。", 329.0),
    "Running Shoes": ("疾风", "塔尔格拉斯 疾风 3 男款公路跑鞋", {
        "terrain": "公路", "gender": "男款", "heel_drop_mm": 8, "stack_height_mm": 32,
        "weight_g": 255, "upper_material": "工程网布", "color": "湖蓝色"}, None, 799.0),
    "Rain Jackets": ("骤雨", "漂泉 骤雨 女款三层防水夹克", {
        "gender": "女款", "material": "三层尼龙", "waterproof_rating_mm": 20000,
        "breathability_g_m2": 15000, "weight_g": 340, "hood": "可调节", "color": "酒红色"},
        "漂泉骤雨是一款女款防水夹克，面料为三层尼龙，防水指数为 20000 毫米，"
        "透气指数为 15000 克/平方米。夹克重量为 340 克，配有可调节兜帽，颜色为酒红色。", 1299.0),
    "Water Bottles": ("清泉", "阿奎拉 清泉 750 毫升保温水壶", {
        "capacity_ml": 750, "material": "18/8 不锈钢", "insulated": True,
        "lid_type": "吸管盖", "weight_g": 340, "color": "薄荷绿", "keeps_cold_h": 24},
        None, 199.0),
    "Yoga Mats": ("静水", "盐花 静水 5 毫米软木瑜伽垫", {
        "material": "软木与天然橡胶", "thickness_mm": 5.0, "dimensions_cm": "183 x 61",
        "weight_g": 2300, "color": "原木色", "texture": "细纹"},
        "盐花静水瑜伽垫厚 5 毫米，由软木与天然橡胶制成，尺寸为 183 x 61 厘米，"
        "重量为 2300 克。垫面为细纹表面，颜色为原木色。", 459.0),
    "Kitchen Knives": ("青锋", "花织 青锋 21 厘米大马士革主厨刀", {
        "knife_type": "主厨刀", "blade_length_cm": 21, "blade_material": "大马士革钢",
        "handle_material": "胡桃木", "weight_g": 205, "hardness_hrc": 61},
        None, 899.0),
    "Desk Lamps": ("书影", "光屋 书影 10W 摇臂台灯", {
        "wattage": 10, "lumens": 800, "color_temperature_k": "2700-6500",
        "arm_type": "摇臂", "material": "铝合金", "color": "象牙白", "dimmable": True},
        "光屋书影是一款 10 瓦摇臂台灯，亮度为 800 流明，色温可在 2700 K 至 6500 K 之间调节。"
        "灯体为铝合金材质，颜色为象牙白，支持调光。", 359.0),
    "Bluetooth Speakers": ("篝火", "声蛾 篝火 20W 防水蓝牙音箱", {
        "output_w": 20, "battery_mah": 4400, "playtime_h": 20, "waterproof_rating": "IP67",
        "bluetooth_version": "5.3", "weight_g": 560, "color": "竹青色",
        "shell_material": "竹木"}, None, 499.0),
}


# Chinese brand names used in zh-CN titles -> the brand's canonical name.
ZH_BRANDS = {
    "北松": "Northpine", "科尔达": "Kelda", "奥特克": "Outcrop", "亮蕨": "Brightfern",
    "铁威克": "Ferrowick", "塔尔格拉斯": "Tallgrass", "漂泉": "Driftwell",
    "阿奎拉": "Aquila", "盐花": "Saltbloom", "花织": "Hanaori", "光屋": "Lumenhaus",
    "声蛾": "Soundmoth",
}


def price_in(lo, hi):
    base = rng.uniform(lo, hi)
    return round(int(base) + pick(0.99, 0.99, 0.95, 0.49, 0.89), 2)


def timestamp():
    month = rng.randint(1, 11)
    day = rng.randint(1, 28)
    hour = rng.randint(0, 23)
    minute = rng.choice([0, 0, 15, 30, 45])
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def build_description(intro, facts, brand, title, category):
    facts = [f for f in facts if f]
    rng.shuffle(facts)
    sentences = [rng.choice(intro)]
    for f in facts:
        if len(" ".join(sentences + [f]).split()) > 120:
            break
        sentences.append(f)
    text = " ".join(sentences)
    closers = [f"It is part of the {brand} {category.lower()} range.",
               f"In the catalog it is listed as the {title}."]
    rng.shuffle(closers)
    for c in closers:
        if len(text.split()) >= 40:
            break
        text += " " + c
    return text


def main():
    rows = []
    for cat, code, gen, desc, brands, (lo, hi) in CATEGORIES:
        seen_titles = set()
        n = 0
        while n < PER_CATEGORY_EN:
            brand = rng.choice(brands)
            line, attrs, title_rest = gen()
            title = f"{brand} {title_rest}"
            if title in seen_titles:
                continue
            seen_titles.add(title)
            while len(attrs) > 8:  # trailing keys are always optional extras
                attrs.pop(next(reversed(attrs)))
            assert 3 <= len(attrs) <= 8, (cat, attrs)
            n += 1
            intro, facts = desc(line, brand, attrs)
            rows.append({
                "sku": f"SG-{code}-{n:04d}",
                "title": title,
                "category": cat,
                "brand": brand,
                "attributes": attrs,
                "price": price_in(lo, hi),
                "currency": "USD",
                "locale": "en-US",
                "_desc": (intro, facts, brand, title, cat),
                "updated_at": timestamp(),
            })
        # zh-CN product
        _, zh_title, zh_attrs, zh_desc, zh_price = ZH[cat]
        zh_brand = ZH_BRANDS[zh_title.split()[0]]
        assert 3 <= len(zh_attrs) <= 8
        rows.append({
            "sku": f"SG-{code}-{n + 1:04d}",
            "title": zh_title,
            "category": cat,
            "brand": zh_brand,
            "attributes": zh_attrs,
            "price": zh_price + 0.0,
            "currency": "CNY",
            "locale": "zh-CN",
            "_desc": zh_desc,
            "updated_at": timestamp(),
        })

    # Exactly half of the en-US rows get a description.
    en_idx = [i for i, r in enumerate(rows) if r["locale"] == "en-US"]
    with_desc = set(rng.sample(en_idx, len(en_idx) // 2))

    outs = []
    for i, r in enumerate(rows):
        d = r.pop("_desc")
        if r["locale"] == "zh-CN":
            description = d
        elif i in with_desc:
            description = build_description(*d)
        else:
            description = None
        outs.append({
            "sku": r["sku"], "title": r["title"], "category": r["category"],
            "brand": r["brand"], "attributes": r["attributes"],
            "price": r["price"], "currency": r["currency"],
            "locale": r["locale"], "description": description,
            "updated_at": r["updated_at"],
        })
    # Interleave categories round-robin so any prefix (a demo's --limit) spans every category.
    by_cat = {}
    for o in outs:
        by_cat.setdefault(o["category"], []).append(o)
    ordered = [col[i] for i in range(max(map(len, by_cat.values()))) for col in by_cat.values() if i < len(col)]
    with OUT.open("w", encoding="utf-8", newline="\n") as fh:
        for out in ordered:
            fh.write(json.dumps(out, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} products to {OUT}")


if __name__ == "__main__":
    main()
