// Official split files (ecosystem.md §1.4) converted to our lists, and readers for the split
// files that ViFi-CLIP / TC-CLIP ship (few-shot, base-to-novel, zero-shot, §1.5–1.7).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "data/annotations.h"

namespace vc::data {

struct SplitLists {
  LabelSet labels;
  std::vector<VideoRecord> train, test;
};

// Paths in the official files name videos ("ApplyEyeMakeup/v_..._g08_c01.avi"). With
// frames extracted, the frame directory is the video path without its extension
// (mmaction2 build_rawframes); `flatten` keeps only the file stem (ViFi's one-folder layout).
struct SplitPathOptions {
  bool strip_extension = true;
  bool flatten = false;
};

// UCF101: <dir>/classInd.txt ("1 ApplyEyeMakeup"), trainlist0k.txt ("Class/v_x.avi 1"),
// testlist0k.txt ("Class/v_x.avi"; the label comes from the class folder). Labels become
// 0-based. split is 1, 2 or 3.
SplitLists ucf101_split(const std::string& dir, int split, const SplitPathOptions& opt = {});

// HMDB51: <dir>/<class>_test_split{k}.txt, lines "<video>.avi <id>" with 1 = train,
// 2 = test, 0 = unused. Classes are numbered by sorted class name (mmaction2). Unless
// `flatten`, paths are "<class>/<video stem>".
SplitLists hmdb51_split(const std::string& dir, int split, const SplitPathOptions& opt = {});

// The shipped ViFi-CLIP / TC-CLIP split files, read as they are: a video list "name.avi
// label" whose labels index the label CSV of that experiment. Checks labels are in range and
// reports per-class counts.
struct ShippedSplit {
  LabelSet labels;
  std::vector<VideoRecord> videos;
  std::vector<int64_t> per_class;  // videos per class id
};
ShippedSplit read_shipped_split(const std::string& list_path, const std::string& labels_path,
                                const SplitPathOptions& opt = {});
// Few-shot (train1_few_shot_K.txt, 2..16 shots for every class): also checks every class
// has exactly `shots` videos (shots <= 0: not checked).
ShippedSplit read_fewshot_split(const std::string& list_path, const std::string& labels_path,
                                int shots, const SplitPathOptions& opt = {});

// Base-to-novel (ViFi benchmark): base labels + fs_base_s{seed}_train.txt for training,
// base_val.txt with base labels and novel_val.txt with novel labels for evaluation.
struct BaseToNovel {
  ShippedSplit train, val_base, val_novel;
};
BaseToNovel read_base_to_novel(const std::string& base_labels, const std::string& novel_labels,
                               const std::string& train_list, const std::string& base_val_list,
                               const std::string& novel_val_list, int shots = 16,
                               const SplitPathOptions& opt = {});

// Zero-shot: train on one label set, evaluate on another (e.g. HMDB val{k}.txt with all 51
// classes, or K600 ZS_split{k}_K600.csv + its eval list). Just two shipped splits.
struct ZeroShot {
  ShippedSplit train, test;
};
ZeroShot read_zero_shot(const std::string& train_labels, const std::string& train_list,
                        const std::string& test_labels, const std::string& test_list,
                        const SplitPathOptions& opt = {});

std::string video_to_frame_dir(const std::string& path, const SplitPathOptions& opt);

}  // namespace vc::data
