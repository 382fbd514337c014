#pragma once

// Lists the failed test cases at the very end of a run, after every log
// line: a long run's output is often read from its tail only.

#include <iostream>
#include <string>
#include <vector>

#include <boost/test/framework.hpp>
#include <boost/test/results_collector.hpp>
#include <boost/test/tree/observer.hpp>
#include <boost/test/tree/test_unit.hpp>
#include <boost/test/tree/traverse.hpp>
#include <boost/test/tree/visitor.hpp>
#include <boost/test/unit_test_suite.hpp>

namespace ap::test {

class failure_summary : public boost::unit_test::test_observer {
public:
  // Every result is final by now, whichever observer ran first.
  void test_finish() override {
    struct collect : boost::unit_test::test_tree_visitor {
      std::vector<std::string> failed;
      void visit(const boost::unit_test::test_case& tc) override {
        const auto& r = boost::unit_test::results_collector.results(tc.p_id);
        if (!r.p_skipped && !r.passed())
          failed.push_back(tc.full_name());
      }
    } c;
    boost::unit_test::traverse_test_tree(boost::unit_test::framework::master_test_suite(), c);
    if (c.failed.empty())
      return;
    std::cerr << "\n" << c.failed.size() << " failed test case(s):\n";
    for (const auto& name : c.failed)
      std::cerr << "  FAILED " << name << "\n";
    std::cerr.flush();
  }
};

/// Registers the summary for the whole run (it outlives the fixture).
struct failure_summary_fixture {
  void setup() {
    static failure_summary summary;
    boost::unit_test::framework::register_observer(summary);
  }
};

} // namespace ap::test
