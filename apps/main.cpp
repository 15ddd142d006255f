// verbclip: one command, many subcommands (`verbclip <subcommand> [options]`).
#include <cxxopts.hpp>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "engine/dist/communicator.h"

namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

// Adding a subcommand: write apps/cmd_<name>.cpp, declare it in commands.h, add a line here.
const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> table = {
      {"make-data", "generate the built-in Fashion-Motion dataset", verbclip::cmd_make_data},
      {"info", "a CLIP config and its parameter counts", verbclip::cmd_info},
      {"embed", "CLIP embeddings of images and texts, and their similarities", verbclip::cmd_embed},
      {"pretrain-clip", "pretrain the tiny CLIP on Fashion-Motion's captions", verbclip::cmd_pretrain_clip},
      {"train", "train a video model (baseline, CLAVER, STDD, ALT, TC-CLIP) from CLIP weights", verbclip::cmd_train},
      {"eval", "evaluate video checkpoints: supervised, fewshot, b2n, zeroshot", verbclip::cmd_eval},
      {"predict", "top-k classes of one clip for your class names and templates", verbclip::cmd_predict},
      {"check-videos", "open and decode every video file of a list; name the bad ones", verbclip::cmd_check_videos},
      {"report", "one HTML page (tables, expectations, curves, pictures) from finished runs", verbclip::cmd_report},
  };
  return table;
}

// " (rank r of W)" under mpirun, else "".
std::string rank_tag() {
  if (!vc::dist::launched_by_mpirun()) return "";
  for (const char* k : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"})
    if (const char* v = std::getenv(k))
      for (const char* n : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
        if (const char* w = std::getenv(n)) return std::string(" (rank ") + v + " of " + w + ")";
  return " (distributed)";
}

void print_help(std::ostream& os) {
  os << "verbclip: CLIP adapted to video action recognition\n\n"
        "usage: verbclip <subcommand> [options]\n"
        "       verbclip <subcommand> --help\n\n"
        "subcommands:\n";
  for (const auto& s : subcommands()) {
    std::string n = s.name;
    os << "  " << n << std::string(n.size() < 16 ? 16 - n.size() : 1, ' ') << s.summary << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_help(std::cerr);
    return 1;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_help(std::cout);
    return 0;
  }
  for (const auto& s : subcommands()) {
    if (name != s.name) continue;
    // The subcommand sees "verbclip <name>" as its program name.
    std::string prog = std::string("verbclip ") + s.name;
    std::vector<char*> args = {prog.data()};
    for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
    try {
      const int code = s.run(int(args.size()), args.data());
      vc::dist::finalize();
      return code;
    } catch (const cxxopts::exceptions::exception& e) {
      std::cerr << "verbclip " << s.name << ": " << e.what() << " (see verbclip " << s.name
                << " --help)\n";
      vc::dist::abort_world(1);
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "verbclip " << s.name << ": error" << rank_tag() << ": " << e.what() << "\n" << std::flush;
      // Under mpirun: an error every rank saw ends each rank cleanly; one only this rank saw
      // aborts the job, so the other ranks do not wait for it.
      if (vc::dist::is_collective_error(e)) {
        try {
          vc::dist::world().barrier();  // every rank has printed before any exits
        } catch (...) {
        }
        vc::dist::finalize();
      } else {
        vc::dist::abort_world(1);
      }
      return 1;
    }
  }
  std::cerr << "verbclip: unknown subcommand '" << name << "'\n\n";
  print_help(std::cerr);
  return 1;
}
