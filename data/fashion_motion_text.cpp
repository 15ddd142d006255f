// The text assets of Fashion-Motion, written by hand: prompt templates, interpretive
// sentences (CLAVER), knowledge-graph triples and clauses (STDD's ASKG) and the entity
// corpus (ALT). They are the small-scale stand-ins for the LLM-written texts of the papers.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "data/fashion_motion.h"

namespace vc::data::fm {

std::vector<std::string> templates() {
  return {"{}",
          "a video of a clothing item {}.",
          "a clip of an item {}.",
          "an item of clothing {}.",
          "look, the item is {}.",
          "a video of action {}.",
          "a short clip of a garment {}.",
          "something {}."};
}

namespace {

// Per class: how the action decomposes, other words for it, and which parts of the item
// show it (CLAVER's three description types), two sentences each.
struct Interpretive {
  const char* decomposition[2];
  const char* synonyms[2];
  const char* parts[2];
};

const std::map<std::string, Interpretive>& interpretive_table() {
  static const std::map<std::string, Interpretive> t = {
      {"moving left",
       {{"the item starts on the right and ends on the left.", "the item slides a little to the left in every frame."},
        {"sliding to the left.", "drifting leftward across the frame."},
        {"the whole item shifts left, its left edge leading.", "the sleeve or sole on the left side moves first toward the frame edge."}}},
      {"moving right",
       {{"the item starts on the left and ends on the right.", "the item slides a little to the right in every frame."},
        {"sliding to the right.", "drifting rightward across the frame."},
        {"the whole item shifts right, its right edge leading.", "the sleeve or sole on the right side moves first toward the frame edge."}}},
      {"moving up",
       {{"the item starts low and ends high.", "the item rises a little in every frame."},
        {"rising.", "drifting upward across the frame."},
        {"the whole item shifts up, its top edge leading.", "the collar or the top of the item moves first toward the top edge."}}},
      {"moving down",
       {{"the item starts high and ends low.", "the item sinks a little in every frame."},
        {"sinking.", "drifting downward across the frame."},
        {"the whole item shifts down, its bottom edge leading.", "the hem or the sole moves first toward the bottom edge."}}},
      {"growing",
       {{"the item starts small and ends large.", "the item gets bigger in every frame while it stays in place."},
        {"enlarging.", "getting bigger."},
        {"every part of the item spreads outward from the centre.", "the edges of the item move away from each other."}}},
      {"shrinking",
       {{"the item starts large and ends small.", "the item gets smaller in every frame while it stays in place."},
        {"getting smaller.", "contracting."},
        {"every part of the item pulls in toward the centre.", "the edges of the item move toward each other."}}},
      {"turning clockwise",
       {{"the item starts upright and turns like a clock hand.", "the item rotates a quarter to a half turn to the right."},
        {"rotating clockwise.", "spinning to the right."},
        {"the top of the item swings to the right.", "the bottom of the item swings to the left while the centre stays."}}},
      {"turning counterclockwise",
       {{"the item starts upright and turns against a clock hand.", "the item rotates a quarter to a half turn to the left."},
        {"rotating counterclockwise.", "spinning to the left."},
        {"the top of the item swings to the left.", "the bottom of the item swings to the right while the centre stays."}}},
      {"fading in",
       {{"the frame starts empty and the item slowly appears.", "the item gets brighter in every frame."},
        {"appearing.", "brightening."},
        {"the whole item brightens at once, no part first.", "the colour of the item grows stronger against the dark background."}}},
      {"fading out",
       {{"the item starts bright and slowly disappears.", "the item gets darker in every frame until the frame is empty."},
        {"disappearing.", "dimming."},
        {"the whole item dims at once, no part first.", "the colour of the item fades into the dark background."}}},
      {"flickering",
       {{"the item changes between two colours in every frame.", "one frame shows one colour, the next frame the other colour."},
        {"blinking.", "alternating colours."},
        {"the whole item changes colour at once.", "the item keeps its place and shape, only its colour switches."}}},
      {"standing still",
       {{"the item keeps one colour and does not move.", "every frame shows the same item in the same place."},
        {"resting.", "staying put."},
        {"no part of the item moves.", "the item keeps its colour, size and place."}}},
      {"lying on its side",
       {{"the item is turned a quarter turn and stays so.", "the item lies sideways in every frame."},
        {"lying sideways.", "resting on its side."},
        {"the top of the item points to the left or right.", "the collar or the sole is at the side, not at the top or bottom."}}},
      {"hanging upside down",
       {{"the item is turned a half turn and stays so.", "the item is upside down in every frame."},
        {"upside down.", "hanging inverted."},
        {"the top of the item points down.", "the collar or the sole is at the bottom, the hem at the top."}}},
      {"moving up and left",
       {{"the item rises while it slides to the left.", "the item moves up and to the left at the same time."},
        {"drifting up and to the left.", "rising diagonally leftward."},
        {"the top left corner of the item leads.", "the item moves toward the top left corner of the frame."}}},
      {"moving up and right",
       {{"the item rises while it slides to the right.", "the item moves up and to the right at the same time."},
        {"drifting up and to the right.", "rising diagonally rightward."},
        {"the top right corner of the item leads.", "the item moves toward the top right corner of the frame."}}},
      {"moving down and left",
       {{"the item sinks while it slides to the left.", "the item moves down and to the left at the same time."},
        {"drifting down and to the left.", "sinking diagonally leftward."},
        {"the bottom left corner of the item leads.", "the item moves toward the bottom left corner of the frame."}}},
      {"moving down and right",
       {{"the item sinks while it slides to the right.", "the item moves down and to the right at the same time."},
        {"drifting down and to the right.", "sinking diagonally rightward."},
        {"the bottom right corner of the item leads.", "the item moves toward the bottom right corner of the frame."}}},
  };
  return t;
}

// Per class: the ordered sub-actions (ASKG action-action chain) and the posture.
struct Askg {
  std::vector<const char*> steps;  // sub-actions in time order
  const char* posture;
  const char* colours;  // "one colour" / "two colours"
};
const std::map<std::string, Askg>& askg_table() {
  static const std::map<std::string, Askg> t = {
      {"moving left", {{"item on the right", "item in the middle", "item on the left"}, "upright", "one colour"}},
      {"moving right", {{"item on the left", "item in the middle", "item on the right"}, "upright", "one colour"}},
      {"moving up", {{"item near the bottom", "item in the middle", "item near the top"}, "upright", "one colour"}},
      {"moving down", {{"item near the top", "item in the middle", "item near the bottom"}, "upright", "one colour"}},
      {"growing", {{"small item", "medium item", "large item"}, "upright", "one colour"}},
      {"shrinking", {{"large item", "medium item", "small item"}, "upright", "one colour"}},
      {"turning clockwise", {{"upright item", "item tilted right", "item turned right"}, "turning", "one colour"}},
      {"turning counterclockwise", {{"upright item", "item tilted left", "item turned left"}, "turning", "one colour"}},
      {"fading in", {{"empty frame", "dim item", "bright item"}, "upright", "one colour"}},
      {"fading out", {{"bright item", "dim item", "empty frame"}, "upright", "one colour"}},
      {"flickering", {{"item in the first colour", "item in the second colour", "item in the first colour"}, "upright", "two colours"}},
      {"standing still", {{"item in place", "same item in place"}, "upright", "one colour"}},
      {"lying on its side", {{"item on its side", "same item on its side"}, "on its side", "one colour"}},
      {"hanging upside down", {{"item upside down", "same item upside down"}, "upside down", "one colour"}},
      {"moving up and left", {{"item near the bottom right", "item in the middle", "item near the top left"}, "upright", "one colour"}},
      {"moving up and right", {{"item near the bottom left", "item in the middle", "item near the top right"}, "upright", "one colour"}},
      {"moving down and left", {{"item near the top right", "item in the middle", "item near the bottom left"}, "upright", "one colour"}},
      {"moving down and right", {{"item near the top left", "item in the middle", "item near the bottom right"}, "upright", "one colour"}},
  };
  return t;
}

}  // namespace

std::string interpretive_json() {
  nlohmann::ordered_json j;
  for (const auto& c : classes()) {
    const Interpretive& it = interpretive_table().at(c.name);
    j[c.name]["decomposition"] = {it.decomposition[0], it.decomposition[1]};
    j[c.name]["synonyms"] = {it.synonyms[0], it.synonyms[1]};
    j[c.name]["parts"] = {it.parts[0], it.parts[1]};
  }
  return j.dump(2) + "\n";
}

std::string askg_json() {
  // STDD's ASKG keys: objects, object-object, action-object and action-action triples,
  // and the clauses continuing "This is an example of {class}, ..." for each kind.
  nlohmann::ordered_json j;
  for (const auto& c : classes()) {
    const Askg& a = askg_table().at(c.name);
    nlohmann::ordered_json e;
    e["obj_en_li"] = {"item", "dark background", "frame"};
    e["obj_rel_triples"] = {{"item", "lies on", "dark background"}, {"item", "is", a.posture}};
    e["act_obj_triples"] = {{c.name, "involves", "item"}, {c.name, "shows", a.colours}};
    nlohmann::ordered_json chain = nlohmann::ordered_json::array();
    chain.push_back({c.name, "starts with", a.steps[0]});
    for (size_t i = 0; i + 1 < a.steps.size(); ++i)
      chain.push_back({a.steps[i], "precedes", a.steps[i + 1]});
    e["act_rel_triples"] = chain;
    e["xprompt_oo"] = {"which shows an item on a dark background.",
                       std::string("where the item is ") + a.posture + "."};
    e["xprompt_ao"] = {"which involves one clothing item.",
                       std::string("where the item shows ") + a.colours + "."};
    nlohmann::ordered_json aa = nlohmann::ordered_json::array();
    aa.push_back(std::string("which starts with the ") + a.steps[0] + ".");
    for (size_t i = 0; i + 1 < a.steps.size(); ++i)
      aa.push_back(std::string("where the ") + a.steps[i] + " comes before the " + a.steps[i + 1] + ".");
    e["xprompt_aa"] = aa;
    j[c.name] = e;
  }
  return j.dump(2) + "\n";
}

std::string corpus_tsv() {
  static const char* rows[][3] = {
      {"object", "t-shirt", "a short-sleeved top with a round neck"},
      {"object", "trouser", "a garment covering each leg separately"},
      {"object", "pullover", "a knitted top with long sleeves pulled on over the head"},
      {"object", "dress", "a one-piece garment with a skirt"},
      {"object", "coat", "a long outer garment with sleeves and buttons"},
      {"object", "sandal", "an open shoe held on by straps"},
      {"object", "shirt", "a top with a collar and buttons down the front"},
      {"object", "sneaker", "a soft sports shoe with laces and a rubber sole"},
      {"object", "bag", "a container with a handle for carrying things"},
      {"object", "ankle boot", "a shoe that covers the foot up to the ankle"},
      {"part", "sleeve", "the part of a top that covers the arm"},
      {"part", "collar", "the band around the neck of a top"},
      {"part", "sole", "the flat bottom of a shoe"},
      {"part", "heel", "the raised back of a shoe"},
      {"part", "strap", "a thin band that holds a sandal or bag"},
      {"part", "handle", "the part of a bag that is held"},
      {"part", "hem", "the bottom edge of a garment"},
      {"part", "lace", "a cord that ties a shoe"},
      {"scene", "dark background", "an almost black area behind the item"},
      {"scene", "noisy background", "a dark area with faint grain that changes every frame"},
      {"scene", "frame centre", "the middle of the picture"},
      {"scene", "frame edge", "the border of the picture where items leave view"},
      {"scene", "empty frame", "a picture with no item in it"},
      {"motion", "shifting left", "changing place toward the left"},
      {"motion", "shifting right", "changing place toward the right"},
      {"motion", "rising", "changing place toward the top"},
      {"motion", "sinking", "changing place toward the bottom"},
      {"motion", "enlarging", "becoming bigger"},
      {"motion", "reducing", "becoming smaller"},
      {"motion", "turning right", "rotating in the direction of a clock hand"},
      {"motion", "turning left", "rotating against the direction of a clock hand"},
      {"motion", "brightening", "becoming more visible"},
      {"motion", "dimming", "becoming less visible"},
      {"motion", "blinking", "switching colour back and forth"},
      {"motion", "resting", "keeping the same place and look"},
  };
  std::string out;
  for (const auto& r : rows) out += std::string(r[0]) + "\t" + r[1] + "\t" + r[2] + "\n";
  return out;
}

std::vector<std::string> word_tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char ch : text) {
    char c = char(std::tolower(static_cast<unsigned char>(ch)));
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      word += c;
      continue;
    }
    if (!word.empty()) out.push_back(word), word.clear();
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') out.push_back(std::string(1, c));
  }
  if (!word.empty()) out.push_back(word);
  return out;
}

std::string build_vocab(const std::vector<std::string>& texts) {
  std::set<std::string> words;
  for (const auto& t : texts)
    for (auto& w : word_tokens(t)) words.insert(w);
  // Ids are line numbers: padding first, end-of-text last (CLIP pools at the highest id).
  std::string out = "<pad>\n<unk>\n";
  for (const auto& w : words) out += w + "\n";
  out += "<|startoftext|>\n<|endoftext|>\n";
  return out;
}

}  // namespace vc::data::fm
