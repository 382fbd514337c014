#define BOOST_TEST_MODULE unit_tests
#include <boost/test/unit_test.hpp>

#include "test/support/failure_summary.hpp"

using ap::test::failure_summary_fixture;
BOOST_TEST_GLOBAL_FIXTURE(failure_summary_fixture);
