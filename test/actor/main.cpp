#define BOOST_TEST_MODULE actor_tests
#include <boost/test/unit_test.hpp>
