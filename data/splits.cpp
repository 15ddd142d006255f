#include "data/splits.h"

#include <dirent.h>

#include <algorithm>
#include <set>

#include "data/util.h"

namespace vc::data {

std::string video_to_frame_dir(const std::string& path, const SplitPathOptions& opt) {
  std::string p = path;
  if (opt.flatten) {
    size_t slash = p.find_last_of('/');
    if (slash != std::string::npos) p = p.substr(slash + 1);
  }
  if (opt.strip_extension) {
    size_t dot = p.find_last_of('.');
    size_t slash = p.find_last_of('/');
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) p = p.substr(0, dot);
  }
  return p;
}

static void check_split_number(int split, const char* what) {
  if (split < 1 || split > 3) fail(what, ": split must be 1, 2 or 3, got ", split);
}

SplitLists ucf101_split(const std::string& dir, int split, const SplitPathOptions& opt) {
  check_split_number(split, "ucf101_split");
  SplitLists out;
  // classInd.txt: "1 ApplyEyeMakeup", 1-based and in order.
  std::string class_file = join_path(dir, "classInd.txt");
  auto lines = read_lines(class_file, "UCF101 class index");
  std::map<std::string, int64_t> by_name;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto cols = split_ws(lines[i]);
    if (cols.empty()) continue;
    int64_t id;
    std::string where = class_file + ":" + std::to_string(i + 1);
    if (cols.size() != 2 || !parse_int(cols[0], id))
      fail(where, ": expected '<id> <ClassName>', got '", lines[i], "'");
    if (id != int64_t(out.labels.names.size()) + 1)
      fail(where, ": class ids must run 1, 2, 3, ...; expected ", out.labels.names.size() + 1,
           ", got ", id);
    by_name[cols[1]] = id - 1;
    out.labels.names.push_back(cols[1]);
  }
  if (out.labels.names.empty()) fail(class_file, " holds no classes");
  const int64_t C = out.labels.size();

  auto read = [&](const std::string& name, bool labelled) {
    std::string file = join_path(dir, name);
    auto ls = read_lines(file, "UCF101 split file");
    std::vector<VideoRecord> recs;
    for (size_t i = 0; i < ls.size(); ++i) {
      auto cols = split_ws(ls[i]);
      if (cols.empty()) continue;
      std::string where = file + ":" + std::to_string(i + 1);
      VideoRecord r;
      r.source = where;
      // The class folder decides the label; a train line's own label must agree with it.
      size_t slash = cols[0].find('/');
      if (slash == std::string::npos) fail(where, ": expected 'Class/video.avi', got '", ls[i], "'");
      auto it = by_name.find(cols[0].substr(0, slash));
      if (it == by_name.end())
        fail(where, ": class folder '", cols[0].substr(0, slash), "' is not in ", class_file);
      if (labelled) {
        int64_t id;
        if (cols.size() != 2 || !parse_int(cols[1], id) || id < 1 || id > C)
          fail(where, ": expected 'Class/video.avi <1..", C, ">', got '", ls[i], "'");
        if (id - 1 != it->second)
          fail(where, ": label ", id, " disagrees with class folder ", cols[0].substr(0, slash));
      } else if (cols.size() != 1) {
        fail(where, ": test lists hold only the video path, got '", ls[i], "'");
      }
      r.path = video_to_frame_dir(cols[0], opt);
      r.labels = {it->second};
      recs.push_back(r);
    }
    return recs;
  };
  out.train = read("trainlist0" + std::to_string(split) + ".txt", true);
  out.test = read("testlist0" + std::to_string(split) + ".txt", false);
  return out;
}

SplitLists hmdb51_split(const std::string& dir, int split, const SplitPathOptions& opt) {
  check_split_number(split, "hmdb51_split");
  const std::string suffix = "_test_split" + std::to_string(split) + ".txt";
  std::vector<std::string> classes;
  DIR* d = opendir(dir.c_str());
  if (!d) fail("cannot open HMDB51 split folder ", dir);
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (ends_with(n, suffix)) classes.push_back(n.substr(0, n.size() - suffix.size()));
  }
  closedir(d);
  if (classes.empty()) fail("no *", suffix, " files in ", dir, " (unpack test_train_splits.rar there)");
  std::sort(classes.begin(), classes.end());  // mmaction2 numbers classes alphabetically
  SplitLists out;
  out.labels.names = classes;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::string file = join_path(dir, classes[c] + suffix);
    auto ls = read_lines(file, "HMDB51 split file");
    for (size_t i = 0; i < ls.size(); ++i) {
      auto cols = split_ws(ls[i]);
      if (cols.empty()) continue;
      std::string where = file + ":" + std::to_string(i + 1);
      int64_t use;
      if (cols.size() != 2 || !parse_int(cols[1], use) || use < 0 || use > 2)
        fail(where, ": expected '<video>.avi <0|1|2>', got '", ls[i], "'");
      if (use == 0) continue;
      VideoRecord r;
      r.source = where;
      std::string p = video_to_frame_dir(cols[0], opt);
      r.path = opt.flatten ? p : classes[c] + "/" + p;
      r.labels = {int64_t(c)};
      (use == 1 ? out.train : out.test).push_back(r);
    }
  }
  return out;
}

ShippedSplit read_shipped_split(const std::string& list_path, const std::string& labels_path,
                                const SplitPathOptions& opt) {
  ShippedSplit s;
  s.labels = read_labels(labels_path);
  ListOptions lo;
  lo.num_classes = s.labels.size();
  s.videos = read_list(list_path, lo);
  s.per_class.assign(size_t(s.labels.size()), 0);
  for (auto& r : s.videos) {
    // Rawframe lists already name directories; only video names lose their extension.
    if (r.total_frames < 0) r.path = video_to_frame_dir(r.path, opt);
    ++s.per_class[size_t(r.label())];
  }
  return s;
}

ShippedSplit read_fewshot_split(const std::string& list_path, const std::string& labels_path,
                                int shots, const SplitPathOptions& opt) {
  ShippedSplit s = read_shipped_split(list_path, labels_path, opt);
  if (shots > 0)
    for (size_t c = 0; c < s.per_class.size(); ++c)
      if (s.per_class[c] != shots)
        fail(list_path, ": class ", c, " (", s.labels.names[c], ") has ", s.per_class[c],
             " videos; a ", shots, "-shot split needs exactly ", shots);
  return s;
}

BaseToNovel read_base_to_novel(const std::string& base_labels, const std::string& novel_labels,
                               const std::string& train_list, const std::string& base_val_list,
                               const std::string& novel_val_list, int shots,
                               const SplitPathOptions& opt) {
  BaseToNovel b;
  b.train = read_fewshot_split(train_list, base_labels, shots, opt);
  b.val_base = read_shipped_split(base_val_list, base_labels, opt);
  b.val_novel = read_shipped_split(novel_val_list, novel_labels, opt);
  for (const auto& n : b.val_novel.labels.names)
    if (b.train.labels.id_of(n) >= 0)
      fail(novel_labels, ": class '", n, "' is also a base class in ", base_labels);
  return b;
}

ZeroShot read_zero_shot(const std::string& train_labels, const std::string& train_list,
                        const std::string& test_labels, const std::string& test_list,
                        const SplitPathOptions& opt) {
  return {read_shipped_split(train_list, train_labels, opt),
          read_shipped_split(test_list, test_labels, opt)};
}

}  // namespace vc::data
