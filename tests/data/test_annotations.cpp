// List files, label files, CSV, official and shipped split files.
#include <doctest/doctest.h>

#include "data/annotations.h"
#include "data/splits.h"
#include "data/util.h"
#include "data_testing.h"

using namespace vc::data;
using namespace vc::data::testing;

TEST_CASE("csv: quoted fields keep commas, quotes and newlines") {
  auto rows = parse_csv("id,name\n21,\"Laying something on the table on its side, not upright\"\n"
                        "3,\"say \"\"hi\"\"\"\n4,\"two\nlines\"\n\n5,plain\r\n",
                        "x.csv");
  REQUIRE(rows.size() == 5);
  CHECK(rows[1].fields == std::vector<std::string>{"21", "Laying something on the table on its side, not upright"});
  CHECK(rows[2].fields[1] == "say \"hi\"");
  CHECK(rows[3].fields[1] == "two\nlines");
  CHECK(rows[4].fields[1] == "plain");
  CHECK(rows[4].line == 7);  // the quoted newline counts; the blank line is skipped
}

TEST_CASE("csv: an unclosed quote names the file and the line it opened on") {
  std::string msg = error_of([] { parse_csv("id,name\n0,ok\n1,\"broken\n2,x\n", "labels.csv"); });
  CHECK(contains(msg, "labels.csv:3"));
  CHECK(contains(msg, "never closed"));
  CHECK(contains(error_of([] { parse_csv("a,b\"c\n", "f.csv"); }), "f.csv:1"));
}

TEST_CASE("label files: CSV with header, JSON map and list, plain text") {
  TempDir d("labels");
  write(d / "l.csv", "id,name\n1,\"hurling (sport)\"\n0,\"Laying something, not upright\"\n");
  LabelSet l = read_labels(d / "l.csv");
  REQUIRE(l.size() == 2);
  CHECK(l.names[0] == "Laying something, not upright");
  CHECK(l.names[1] == "hurling (sport)");
  write(d / "noheader.csv", "0,a\n1,b\n");
  CHECK(read_labels(d / "noheader.csv").names == std::vector<std::string>{"a", "b"});
  write(d / "m.json", R"({"1": "b", "0": "a"})");
  CHECK(read_labels(d / "m.json").names == std::vector<std::string>{"a", "b"});
  write(d / "l.json", R"(["x", "y", "z"])");
  CHECK(read_labels(d / "l.json").size() == 3);
  write(d / "map.txt", "abseiling\nair drumming\n\n");
  CHECK(read_labels(d / "map.txt").names == std::vector<std::string>{"abseiling", "air drumming"});
}

TEST_CASE("label files: gaps, duplicates, bad ids and bad JSON are named") {
  TempDir d("labels_bad");
  write(d / "gap.csv", "id,name\n0,a\n2,c\n");
  CHECK(contains(error_of([&] { read_labels(d / "gap.csv"); }), "id 1 is missing"));
  write(d / "dup.csv", "id,name\n0,a\n0,b\n");
  CHECK(contains(error_of([&] { read_labels(d / "dup.csv"); }), "appears twice"));
  write(d / "bad.csv", "id,name\n0,a\nx,b\n");
  CHECK(contains(error_of([&] { read_labels(d / "bad.csv"); }), "bad.csv:3"));
  write(d / "commas.csv", "id,name\n0,a,b\n");
  std::string m = error_of([&] { read_labels(d / "commas.csv"); });
  CHECK(contains(m, "commas.csv:2"));
  CHECK(contains(m, "quote"));
  write(d / "samename.csv", "0,a\n1,a\n");
  CHECK(contains(error_of([&] { read_labels(d / "samename.csv"); }), "already used"));
  write(d / "b.json", "{\"0\": ");
  CHECK(contains(error_of([&] { read_labels(d / "b.json"); }), "not valid JSON"));
  CHECK(contains(error_of([&] { read_labels(d / "missing.csv"); }), "missing.csv"));
}

TEST_CASE("label files: write then read round-trips quoted names") {
  TempDir d("labels_rt");
  LabelSet l;
  l.names = {"a, b", "say \"x\"", "plain"};
  write_labels_csv(d / "o.csv", l);
  CHECK(read_labels(d / "o.csv").names == l.names);
}

TEST_CASE("split_camel_case: TC-CLIP's parse_ucf101") {
  CHECK(split_camel_case("ApplyEyeMakeup") == "Apply Eye Makeup");
  CHECK(split_camel_case("YoYo") == "Yo Yo");
  CHECK(split_camel_case("already spaced") == "already spaced");
}

TEST_CASE("list files: every format, CRLF and trailing spaces") {
  TempDir d("lists");
  write(d / "raw.txt", "vid/a 32 3\r\nvid/b 16 0   \n\n# comment\n");
  auto r = read_list(d / "raw.txt");
  REQUIRE(r.size() == 2);
  CHECK(r[0].path == "vid/a");
  CHECK(r[0].total_frames == 32);
  CHECK(r[0].label() == 3);
  CHECK(r[1].source == d / "raw.txt" + ":2");

  write(d / "off.txt", "long/v 100 16 5\n");
  r = read_list(d / "off.txt");
  CHECK(r[0].offset == 100);
  CHECK(r[0].total_frames == 16);
  CHECK(r[0].label() == 5);

  write(d / "video.txt", "v_ApplyEyeMakeup_g01_c01.avi 0\nval/0wR5jVB-WPk_000417_000427.mp4 7\n");
  r = read_list(d / "video.txt");
  CHECK(r[1].path == "val/0wR5jVB-WPk_000417_000427.mp4");
  CHECK(r[1].total_frames == -1);
  CHECK(r[1].label() == 7);

  write(d / "stdd.csv", "k400/abseiling/x.mp4,0\nk400/y.mp4, 12\n");
  ListOptions csv;
  csv.format = ListFormat::Csv;
  r = read_list(d / "stdd.csv", csv);
  CHECK(r[1].path == "k400/y.mp4");
  CHECK(r[1].label() == 12);

  write(d / "multi.txt", "a 10 1 4 7\n");
  ListOptions multi;
  multi.format = ListFormat::Rawframe;
  CHECK(read_list(d / "multi.txt", multi)[0].labels == std::vector<int64_t>{1, 4, 7});

  write(d / "l.json", R"([{"frame_dir": "a", "total_frames": 8, "label": 2}, {"filename": "b.mp4", "label": [1, 3]}])");
  r = read_list(d / "l.json");
  CHECK(r[0].total_frames == 8);
  CHECK(r[1].labels == std::vector<int64_t>{1, 3});

  write(d / "nolabel.txt", "a\nb\n");
  ListOptions inf;
  inf.require_label = false;
  CHECK(read_list(d / "nolabel.txt", inf)[1].label() == -1);
  CHECK(contains(error_of([&] { read_list(d / "nolabel.txt"); }), "no label"));
}

TEST_CASE("list files: broken lines fail with file and line, or are skipped and counted") {
  TempDir d("lists_bad");
  write(d / "bad.txt", "a 10 1\nb ten 2\nc 10 1\nd 10 99\ne 10\n");
  ListOptions opt;
  opt.num_classes = 5;
  opt.format = ListFormat::Rawframe;
  std::string msg = error_of([&] { read_list(d / "bad.txt", opt); });
  CHECK(contains(msg, "bad.txt:2"));
  CHECK(contains(msg, "total_frames 'ten'"));

  Problems p;
  p.policy = BadInput::Skip;
  p.quiet = true;
  auto r = read_list(d / "bad.txt", opt, p);
  REQUIRE(r.size() == 2);
  CHECK(r[1].path == "c");
  REQUIRE(p.count() == 3);
  CHECK(contains(p.warnings[1], "bad.txt:4"));
  CHECK(contains(p.warnings[1], "out of range for 5 classes"));
  CHECK(contains(p.warnings[2], "bad.txt:5"));

  write(d / "mixed.txt", "a 10 1\nb 1\n");
  CHECK(contains(error_of([&] { read_list(d / "mixed.txt"); }), "mixed.txt:2"));
  CHECK(contains(error_of([&] { parse_list_format("xml"); }), "unknown list format 'xml'"));
  CHECK(contains(error_of([&] { read_list(d / "none.txt"); }), "none.txt"));
}

TEST_CASE("UCF101 official split files convert to 0-based lists") {
  TempDir d("ucf");
  write(d / "classInd.txt", "1 ApplyEyeMakeup\r\n2 Archery\r\n");
  write(d / "trainlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g09_c02.avi 2\n");
  write(d / "testlist01.txt", "Archery/v_Archery_g01_c01.avi\n");
  SplitLists s = ucf101_split(d.path.string(), 1);
  CHECK(s.labels.names == std::vector<std::string>{"ApplyEyeMakeup", "Archery"});
  REQUIRE(s.train.size() == 2);
  CHECK(s.train[0].path == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01");
  CHECK(s.train[1].label() == 1);
  REQUIRE(s.test.size() == 1);
  CHECK(s.test[0].label() == 1);
  SplitPathOptions flat;
  flat.flatten = true;
  CHECK(ucf101_split(d.path.string(), 1, flat).test[0].path == "v_Archery_g01_c01");

  write(d / "trainlist02.txt", "Archery/v_Archery_g09_c02.avi 1\n");
  write(d / "testlist02.txt", "");
  std::string msg = error_of([&] { ucf101_split(d.path.string(), 2); });
  CHECK(contains(msg, "trainlist02.txt:1"));
  CHECK(contains(msg, "disagrees"));
  CHECK(contains(error_of([&] { ucf101_split(d.path.string(), 3); }), "trainlist03.txt"));
}

TEST_CASE("HMDB51 official split files: classes sorted, 1 = train, 2 = test, 0 unused") {
  TempDir d("hmdb");
  write(d / "wave_test_split1.txt", "w1.avi 1\nw2.avi 2\nw3.avi 0\n");
  write(d / "brush_hair_test_split1.txt", "b1.avi 2 \nb2.avi 1\n");
  write(d / "brush_hair_test_split2.txt", "b1.avi 1\n");
  SplitLists s = hmdb51_split(d.path.string(), 1);
  CHECK(s.labels.names == std::vector<std::string>{"brush_hair", "wave"});
  REQUIRE(s.train.size() == 2);
  REQUIRE(s.test.size() == 2);
  CHECK(s.train[0].path == "brush_hair/b2");
  CHECK(s.test[1].path == "wave/w2");
  CHECK(s.test[1].label() == 1);
  write(d / "wave_test_split3.txt", "w1.avi 7\n");
  CHECK(contains(error_of([&] { hmdb51_split(d.path.string(), 3); }), "wave_test_split3.txt:1"));
}

TEST_CASE("shipped few-shot, base-to-novel and zero-shot split files read as they are") {
  TempDir d("shipped");
  write(d / "labels/hmdb_base_labels.csv", "id,name\n0,brush hair\n1,cartwheel\n");
  write(d / "labels/hmdb_novel_labels.csv", "id,name\n0,wave\n");
  write(d / "fs_base_s1_train.txt", "a.avi 0\nb.avi 0\nc.avi 1\nd.avi 1\n");
  write(d / "base_val.txt", "e.avi 1\n");
  write(d / "novel_val.txt", "f.avi 0\n");
  BaseToNovel b = read_base_to_novel(d / "labels/hmdb_base_labels.csv", d / "labels/hmdb_novel_labels.csv",
                                     d / "fs_base_s1_train.txt", d / "base_val.txt", d / "novel_val.txt", 2);
  CHECK(b.train.per_class == std::vector<int64_t>{2, 2});
  CHECK(b.train.videos[0].path == "a");
  CHECK(b.val_novel.labels.names[0] == "wave");
  CHECK(contains(error_of([&] { read_fewshot_split(d / "fs_base_s1_train.txt", d / "labels/hmdb_base_labels.csv", 4); }),
                 "has 2 videos; a 4-shot split needs exactly 4"));
  write(d / "novel_bad.txt", "f.avi 1\n");
  CHECK(contains(error_of([&] { read_shipped_split(d / "novel_bad.txt", d / "labels/hmdb_novel_labels.csv"); }),
                 "novel_bad.txt:1"));
  ZeroShot z = read_zero_shot(d / "labels/hmdb_base_labels.csv", d / "fs_base_s1_train.txt",
                              d / "labels/hmdb_novel_labels.csv", d / "novel_val.txt");
  CHECK(z.test.videos.size() == 1);
}

TEST_CASE("frame templates: python and printf styles") {
  CHECK(format_frame_name("img_{:05d}.jpg", 7) == "img_00007.jpg");
  CHECK(format_frame_name("img_{:05}.jpg", 12) == "img_00012.jpg");
  CHECK(format_frame_name("{}.png", 3) == "3.png");
  CHECK(format_frame_name("frame%03d.png", 5) == "frame005.png");
  CHECK(contains(error_of([] { check_frame_template("img.jpg"); }), "no integer placeholder"));
}

TEST_CASE("list files in memory: a line of only form feed or vertical tab is blank (fuzz_list_file)") {
  // Before: trim() kept "\f", split_ws() found no column, and the parser read cols[0] of an
  // empty vector (a crash under the default auto format and under video and rawframe).
  for (ListFormat f : {ListFormat::Auto, ListFormat::Video, ListFormat::Rawframe, ListFormat::RawframeOffset}) {
    ListOptions opt;
    opt.format = f;
    Problems p;
    std::string cols = f == ListFormat::RawframeOffset ? "a 0 8 1" : f == ListFormat::Rawframe ? "a 8 1" : "a 1";
    auto r = parse_list_text("\f\n" + cols + "\r\n\v \n" + cols + "\n", "mem.txt", opt, p);
    REQUIRE(r.size() == 2);
    CHECK(r[0].path == "a");
    CHECK(r[1].source == "mem.txt:4");
    CHECK(p.count() == 0);
  }
  // A JSON name picks the JSON parser under auto, as a path does.
  Problems p;
  auto j = parse_list_text(R"([{"frame_dir": "x", "total_frames": 3, "label": 2}])", "mem.json", {}, p);
  REQUIRE(j.size() == 1);
  CHECK(j[0].total_frames == 3);
}

TEST_CASE("JSON lists and label maps with a number out of double's range fail naming the file (fuzz_list_file)") {
  // nlohmann throws out_of_range, not parse_error, for 1E400: it escaped as a foreign exception.
  Problems p;
  CHECK_THROWS_WITH_AS(parse_list_text(R"([{"frame_dir": "x", "total_frames": 1E400}])", "big.json", {}, p),
                       doctest::Contains("big.json"), vc::Error);
  TempDir d("json_range");
  write(d / "labels.json", R"({"0": 1E400})");
  CHECK_THROWS_WITH_AS(read_labels(d / "labels.json"), doctest::Contains("labels.json"), vc::Error);
}
