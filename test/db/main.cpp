#define BOOST_TEST_MODULE db_tests
#include <boost/test/unit_test.hpp>
