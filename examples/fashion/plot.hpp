#pragma once
// The jobs' method tables as a picture: quality against gradient evaluations,
// one line per start, as an SVG file beside metrics.json. SVG is text (no
// plotting library in Debian 12 draws from C++ without a runtime such as
// gnuplot) and renders wherever the README does.
#include <tr0n/io/atomic_file.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace fashion {

/// One line: a start's (gradient evaluations, value) points.
struct plot_series {
  std::string name;
  std::vector<std::pair<double, double>> points;
};

/// One chart: a quantity against gradient evaluations, for every start.
struct plot_panel {
  std::string y_label;
  std::vector<plot_series> lines;
  bool lower_is_better = false;
};

/// The rows of a metrics.json grouped into lines by `line_of(row)` (rows it
/// maps to "" are left out), each point (`grad_evals`, `row[metric]`), by x.
inline std::vector<plot_series> series_of(const nlohmann::json& rows, const std::string& metric,
                                          const std::function<std::string(const nlohmann::json&)>& line_of) {
  std::vector<plot_series> lines;
  for (const auto& row : rows) {
    const auto name = line_of(row);
    if (name.empty() || !row.contains(metric) || !row[metric].is_number()) continue;
    auto it = std::find_if(lines.begin(), lines.end(), [&](const plot_series& s) { return s.name == name; });
    if (it == lines.end()) it = lines.insert(lines.end(), plot_series{name, {}});
    it->points.emplace_back(row.at("grad_evals").get<double>(), row[metric].get<double>());
  }
  for (auto& s : lines) std::sort(s.points.begin(), s.points.end());
  return lines;
}

namespace detail {

inline std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, std::abs(v) >= 10 ? "%.0f" : std::abs(v) >= 1 ? "%.1f" : "%.2f", v);
  return buf;
}

inline std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

/// Five round ticks spanning [lo, hi].
inline std::vector<double> ticks(double lo, double hi) {
  const double raw = (hi - lo) / 4;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) t.push_back(v);
  return t;
}

}  // namespace detail

/// The panels side by side; x is gradient evaluations on a log scale (log10(1 + g)).
inline std::string svg_plot(const std::string& title, const std::vector<plot_panel>& panels) {
  static const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  const double pw = 380, ph = 260, left = 60, top = 60, gap = 90, legend = 24;
  const double width = left + panels.size() * (pw + gap), height = top + ph + 60 + legend * 2;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + detail::number(width) + "\" height=\"" +
                    detail::number(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + detail::number(left) + "\" y=\"20\" font-size=\"15\">" + detail::escape(title) + "</text>\n";
  auto gx = [](double g) { return std::log10(1 + g); };
  double xmax = 1;
  for (const auto& p : panels)
    for (const auto& s : p.lines)
      for (const auto& [x, y] : s.points) xmax = std::max(xmax, gx(x));
  xmax = std::ceil(xmax);
  for (size_t i = 0; i < panels.size(); ++i) {
    const auto& p = panels[i];
    const double x0 = left + static_cast<double>(i) * (pw + gap), y0 = top;
    double lo = 1e300, hi = -1e300;
    for (const auto& s : p.lines)
      for (const auto& [x, y] : s.points) lo = std::min(lo, y), hi = std::max(hi, y);
    if (lo > hi) continue;
    const double pad = std::max(1e-9, (hi - lo) * 0.08);
    lo -= pad, hi += pad;
    auto sx = [&](double g) { return x0 + gx(g) / xmax * pw; };
    auto sy = [&](double v) { return y0 + ph - (v - lo) / (hi - lo) * ph; };
    svg += "<rect x=\"" + detail::number(x0) + "\" y=\"" + detail::number(y0) + "\" width=\"" + detail::number(pw) +
           "\" height=\"" + detail::number(ph) + "\" fill=\"none\" stroke=\"#444\"/>\n";
    for (double t : detail::ticks(lo, hi)) {
      const auto y = detail::number(sy(t));
      svg += "<line x1=\"" + detail::number(x0) + "\" x2=\"" + detail::number(x0 + pw) + "\" y1=\"" + y + "\" y2=\"" + y +
             "\" stroke=\"#ddd\"/>\n<text x=\"" + detail::number(x0 - 6) + "\" y=\"" + y +
             "\" text-anchor=\"end\" dominant-baseline=\"middle\">" + detail::number(t) + "</text>\n";
    }
    for (double g = 0; gx(g) <= xmax + 0.01; g = g == 0 ? 1 : g * 10) {
      const auto x = detail::number(sx(g));
      svg += "<line x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + detail::number(y0) + "\" y2=\"" + detail::number(y0 + ph) +
             "\" stroke=\"#eee\"/>\n<text x=\"" + x + "\" y=\"" + detail::number(y0 + ph + 16) +
             "\" text-anchor=\"middle\">" + std::to_string(static_cast<long long>(g)) + "</text>\n";
    }
    svg += "<text x=\"" + detail::number(x0 + pw / 2) + "\" y=\"" + detail::number(y0 + ph + 34) +
           "\" text-anchor=\"middle\">gradient evaluations per sample (log scale)</text>\n";
    svg += "<text x=\"" + detail::number(x0) + "\" y=\"" + detail::number(y0 - 8) + "\">" + detail::escape(p.y_label) +
           (p.lower_is_better ? " (lower is better)" : " (higher is better)") + "</text>\n";
    for (size_t k = 0; k < p.lines.size(); ++k) {
      const auto& s = p.lines[k];
      const std::string colour = colours[k % 8];
      std::string pts;
      for (const auto& [x, y] : s.points) pts += detail::number(sx(x)) + "," + detail::number(sy(y)) + " ";
      svg += "<polyline fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"2\" points=\"" + pts + "\"/>\n";
      for (const auto& [x, y] : s.points)
        svg += "<circle cx=\"" + detail::number(sx(x)) + "\" cy=\"" + detail::number(sy(y)) + "\" r=\"3\" fill=\"" +
               colour + "\"/>\n";
    }
  }
  // One legend for every panel (the lines are the same starts).
  if (!panels.empty()) {
    double x = left, y = top + ph + 58;
    for (size_t k = 0; k < panels.front().lines.size(); ++k) {
      const auto& name = panels.front().lines[k].name;
      svg += "<rect x=\"" + detail::number(x) + "\" y=\"" + detail::number(y - 9) + "\" width=\"14\" height=\"4\" fill=\"" +
             colours[k % 8] + "\"/>\n<text x=\"" + detail::number(x + 18) + "\" y=\"" + detail::number(y - 3) + "\">" +
             detail::escape(name) + "</text>\n";
      x += 30 + 7.0 * static_cast<double>(name.size());
      if (x > width - 150) x = left, y += legend;
    }
  }
  return svg + "</svg>\n";
}

inline void write_svg_plot(const std::string& path, const std::string& title, const std::vector<plot_panel>& panels) {
  tr0n::write_file_atomically(path, svg_plot(title, panels));
}

}  // namespace fashion
