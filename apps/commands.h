// The subcommands of `verbclip`. Each lives in apps/cmd_<name>.cpp and is registered by
// one line in the table of apps/main.cpp. A subcommand gets its own argv (argv[0] is
// "verbclip <name>"), returns the exit code, and throws vc::Error (or any
// std::exception) for user errors: main prints one clear message and exits with 1.
#pragma once

namespace verbclip {

int cmd_make_data(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_embed(int argc, char** argv);
int cmd_pretrain_clip(int argc, char** argv);
int cmd_train(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_predict(int argc, char** argv);
int cmd_check_videos(int argc, char** argv);
int cmd_report(int argc, char** argv);

}  // namespace verbclip
