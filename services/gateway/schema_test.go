package gateway

import (
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// The texts below are Python's: str(e) of the ValidationError that
// jsonschema.validate(instance, schema) raises, instance being
// json.loads(body) with a string "password" replaced by '***' (flmngr
// hides it), printed by jsonschema 4.26.0 on CPython 3.11.7; 4.23 to 4.26
// print the same. Debian bookworm's python3-jsonschema (4.10.3) gives
// other texts for most of them: it sorts dict keys and, among errors at
// one depth, picks the first found instead of the greatest path.

// createSchema is rpc_exec_create_task.json as pprint prints it in an
// error (pformat, width 72, its own key order), indented by 4.
const createSchema = `{'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'task_id': {'type': 'string'},
                    'host': {'type': 'string'},
                    'port': {'type': 'integer'},
                    'username': {'type': 'string'},
                    'password': {'type': 'string'},
                    'files_paths': {'type': 'array',
                                    'items': {'type': 'string'}},
                    'selection_criteria': {'type': 'string'},
                    'server_arguments': {'type': 'string',
                                         'additionalProperties': True},
                    'client_arguments': {'type': 'string',
                                         'additionalProperties': True},
                    'tags': {'type': 'array', 'items': {'type': 'string'}}},
     'required': ['task_id',
                  'host',
                  'port',
                  'username',
                  'password',
                  'files_paths'],
     'additionalProperties': False}`

var pyCases = []struct {
	name   string
	schema string // one of schemas/, or
	inline string // a draft-07 schema without its $schema
	body   string
	want   string // "" when the body is valid
}{
	{
		name:   "create: port is a string",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":"error","username":"user","password":"123","files_paths":["client.py","task.py"]}`,
		want: `'error' is not of type 'integer'

Failed validating 'type' in schema['properties']['port']:
    {'type': 'integer'}

On instance['port']:
    'error'`,
	},
	{
		name:   "create: unknown property",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"],"colour":"red"}`,
		want: `Additional properties are not allowed ('colour' was unexpected)

Failed validating 'additionalProperties' in schema:
    ` + createSchema + `

On instance:
    {'task_id': '4fe5',
     'host': 'localhost',
     'port': 8080,
     'username': 'user',
     'password': '***',
     'files_paths': ['client.py', 'task.py'],
     'colour': 'red'}`,
	},
	{
		name:   "create: two unknown properties",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"],"zeta":1,"alpha":2}`,
		want: `Additional properties are not allowed ('alpha', 'zeta' were unexpected)

Failed validating 'additionalProperties' in schema:
    ` + createSchema + `

On instance:
    {'task_id': '4fe5',
     'host': 'localhost',
     'port': 8080,
     'username': 'user',
     'password': '***',
     'files_paths': ['client.py', 'task.py'],
     'zeta': 1,
     'alpha': 2}`,
	},
	{
		name:   "create: missing host and port",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","username":"user","password":"123","files_paths":["client.py","task.py"]}`,
		want: `'host' is a required property

Failed validating 'required' in schema:
    ` + createSchema + `

On instance:
    {'task_id': '4fe5',
     'username': 'user',
     'password': '***',
     'files_paths': ['client.py', 'task.py']}`,
	},
	{
		name:   "create: unknown and missing",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","colour":"red"}`,
		want: `'files_paths' is a required property

Failed validating 'required' in schema:
    ` + createSchema + `

On instance:
    {'task_id': '4fe5',
     'host': 'localhost',
     'port': 8080,
     'username': 'user',
     'password': '***',
     'colour': 'red'}`,
	},
	{
		name:   "create: empty object",
		schema: "rpc_exec_create_task",
		body:   `{}`,
		want: `'task_id' is a required property

Failed validating 'required' in schema:
    ` + createSchema + `

On instance:
    {}`,
	},
	{
		name:   "create: two wrong types",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":1,"host":"localhost","port":"x","username":"user","password":"123","files_paths":["client.py","task.py"]}`,
		want: `1 is not of type 'string'

Failed validating 'type' in schema['properties']['task_id']:
    {'type': 'string'}

On instance['task_id']:
    1`,
	},
	{
		name:   "create: wrong items",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":[1,"a",2]}`,
		want: `2 is not of type 'string'

Failed validating 'type' in schema['properties']['files_paths']['items']:
    {'type': 'string'}

On instance['files_paths'][2]:
    2`,
	},
	{
		name:   "create: wrong items in two lists",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":[1],"tags":[true]}`,
		want: `True is not of type 'string'

Failed validating 'type' in schema['properties']['tags']['items']:
    {'type': 'string'}

On instance['tags'][0]:
    True`,
	},
	{
		name:   "create: server_arguments is an object",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"],"server_arguments":{"b":1,"a":2}}`,
		want: `{'b': 1, 'a': 2} is not of type 'string'

Failed validating 'type' in schema['properties']['server_arguments']:
    {'type': 'string', 'additionalProperties': True}

On instance['server_arguments']:
    {'b': 1, 'a': 2}`,
	},
	{
		name:   "create: files_paths is null",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":null}`,
		want: `None is not of type 'array'

Failed validating 'type' in schema['properties']['files_paths']:
    {'type': 'array', 'items': {'type': 'string'}}

On instance['files_paths']:
    None`,
	},
	{
		name:   "create: port is a float",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":80.5,"username":"user","password":"123","files_paths":["client.py","task.py"]}`,
		want: `80.5 is not of type 'integer'

Failed validating 'type' in schema['properties']['port']:
    {'type': 'integer'}

On instance['port']:
    80.5`,
	},
	{
		name:   "create: port is a whole float",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":80.0,"username":"user","password":"123","files_paths":["client.py","task.py"]}`,
		want:   "",
	},
	{
		name:   "create: port is true",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":true,"username":"user","password":"123","files_paths":["client.py","task.py"]}`,
		want: `True is not of type 'integer'

Failed validating 'type' in schema['properties']['port']:
    {'type': 'integer'}

On instance['port']:
    True`,
	},
	{
		name:   "create: long strings",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"],"selection_criteria":"\"camera\" in sensors and data_qnt > 100 and avg_acc_contrib >= 0.5 or 'gps' in sensors and avg_disconnection_per_round < 3","colour":"x"}`,
		want: `Additional properties are not allowed ('colour' was unexpected)

Failed validating 'additionalProperties' in schema:
    ` + createSchema + `

On instance:
    {'task_id': '4fe5',
     'host': 'localhost',
     'port': 8080,
     'username': 'user',
     'password': '***',
     'files_paths': ['client.py', 'task.py'],
     'selection_criteria': '"camera" in sensors and data_qnt > 100 and '
                           "avg_acc_contrib >= 0.5 or 'gps' in sensors and "
                           'avg_disconnection_per_round < 3',
     'colour': 'x'}`,
	},
	{
		name:   "create: a long line in a wrong value",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":"lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam","username":"user","password":"123","files_paths":["client.py","task.py"]}`,
		want: `'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam' is not of type 'integer'

Failed validating 'type' in schema['properties']['port']:
    {'type': 'integer'}

On instance['port']:
    ('lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do '
     'eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim '
     'ad minim veniam')`,
	},
	{
		name:   "create: lines in a wrong value",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":"first line\nsecond line is a bit longer than the first one, long enough to be cut\r\nthird\u2028fourth","username":"user","password":"123","files_paths":["client.py","task.py"]}`,
		want: `'first line\nsecond line is a bit longer than the first one, long enough to be cut\r\nthird\u2028fourth' is not of type 'integer'

Failed validating 'type' in schema['properties']['port']:
    {'type': 'integer'}

On instance['port']:
    ('first line\n'
     'second line is a bit longer than the first one, long enough to be '
     'cut\r\n'
     'third\u2028'
     'fourth')`,
	},
	{
		name:   "create: many files and an unknown property",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["file_00.py","file_01.py","file_02.py","file_03.py","file_04.py","file_05.py","file_06.py","file_07.py","file_08.py","file_09.py","file_10.py","file_11.py","file_12.py","file_13.py","file_14.py","file_15.py","file_16.py","file_17.py","file_18.py","file_19.py","file_20.py","file_21.py","file_22.py","file_23.py","file_24.py","file_25.py","file_26.py","file_27.py","file_28.py","file_29.py"],"x":null}`,
		want: `Additional properties are not allowed ('x' was unexpected)

Failed validating 'additionalProperties' in schema:
    ` + createSchema + `

On instance:
    {'task_id': '4fe5',
     'host': 'localhost',
     'port': 8080,
     'username': 'user',
     'password': '***',
     'files_paths': ['file_00.py',
                     'file_01.py',
                     'file_02.py',
                     'file_03.py',
                     'file_04.py',
                     'file_05.py',
                     'file_06.py',
                     'file_07.py',
                     'file_08.py',
                     'file_09.py',
                     'file_10.py',
                     'file_11.py',
                     'file_12.py',
                     'file_13.py',
                     'file_14.py',
                     'file_15.py',
                     'file_16.py',
                     'file_17.py',
                     'file_18.py',
                     'file_19.py',
                     'file_20.py',
                     'file_21.py',
                     'file_22.py',
                     'file_23.py',
                     'file_24.py',
                     'file_25.py',
                     'file_26.py',
                     'file_27.py',
                     'file_28.py',
                     'file_29.py'],
     'x': None}`,
	},
	{
		name:   "create: nested unknown property",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"],"extra":{"a":[1,2,{"b":"c","d":[true,false,null]}],"long_key_name_here":"a value that makes the dict too long for one line"}}`,
		want: `Additional properties are not allowed ('extra' was unexpected)

Failed validating 'additionalProperties' in schema:
    ` + createSchema + `

On instance:
    {'task_id': '4fe5',
     'host': 'localhost',
     'port': 8080,
     'username': 'user',
     'password': '***',
     'files_paths': ['client.py', 'task.py'],
     'extra': {'a': [1, 2, {'b': 'c', 'd': [True, False, None]}],
               'long_key_name_here': 'a value that makes the dict too long '
                                     'for one line'}}`,
	},
	{
		name:   "create: quotes and unicode",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"],"colour":"it's \"quoted\" \u00e9 \u00a0 \u2028 \u0007 \u007f \ud83d\ude00 \u200b tab\there","k2":"it's","k3":"say \"hi\"","k4":"\\back"}`,
		want: `Additional properties are not allowed ('colour', 'k2', 'k3', 'k4' were unexpected)

Failed validating 'additionalProperties' in schema:
    ` + createSchema + `

On instance:
    {'task_id': '4fe5',
     'host': 'localhost',
     'port': 8080,
     'username': 'user',
     'password': '***',
     'files_paths': ['client.py', 'task.py'],
     'colour': 'it\'s "quoted" é \xa0 \u2028 \x07 \x7f 😀 \u200b tab\there',
     'k2': "it's",
     'k3': 'say "hi"',
     'k4': '\\back'}`,
	},
	{
		name:   "create: numbers",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"],"nums":[1e+16,1000000000000000.0,1e-05,0.0001,0.1,123456789.123,-0.0,1e+22,5e-324,1.7976931348623157e+308,2.5,-3.0,100.0],"big":123456789012345678901234567890,"neg":-7}`,
		want: `Additional properties are not allowed ('big', 'neg', 'nums' were unexpected)

Failed validating 'additionalProperties' in schema:
    ` + createSchema + `

On instance:
    {'task_id': '4fe5',
     'host': 'localhost',
     'port': 8080,
     'username': 'user',
     'password': '***',
     'files_paths': ['client.py', 'task.py'],
     'nums': [1e+16,
              1000000000000000.0,
              1e-05,
              0.0001,
              0.1,
              123456789.123,
              -0.0,
              1e+22,
              5e-324,
              1.7976931348623157e+308,
              2.5,
              -3.0,
              100.0],
     'big': 123456789012345678901234567890,
     'neg': -7}`,
	},
	{
		name:   "create: repeated key",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"a","host":"h","task_id":5,"port":1,"username":"u","password":"p","files_paths":[]}`,
		want: `5 is not of type 'string'

Failed validating 'type' in schema['properties']['task_id']:
    {'type': 'string'}

On instance['task_id']:
    5`,
	},
	{
		name:   "create: number formats",
		schema: "rpc_exec_create_task",
		body:   `{"task_id":"a","host":"h","port":1E2,"username":"u","password":"p","files_paths":[],"n":[1E2,1e+2,-0,0.0000001,12e-1]}`,
		want: `Additional properties are not allowed ('n' was unexpected)

Failed validating 'additionalProperties' in schema:
    ` + createSchema + `

On instance:
    {'task_id': 'a',
     'host': 'h',
     'port': 100.0,
     'username': 'u',
     'password': '***',
     'files_paths': [],
     'n': [100.0, 100.0, 0, 1e-07, 1.2]}`,
	},
	{
		name:   "get_task_by_id: root [1, 2.5, \"x\", null, true]",
		schema: "rpc_exec_get_task_by_id",
		body:   `[1,2.5,"x",null,true]`,
		want: `[1, 2.5, 'x', None, True] is not of type 'object'

Failed validating 'type' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'task_id': {'type': 'string'}},
     'required': ['task_id'],
     'additionalProperties': False}

On instance:
    [1, 2.5, 'x', None, True]`,
	},
	{
		name:   "get_task_by_id: root \"x\"",
		schema: "rpc_exec_get_task_by_id",
		body:   `"x"`,
		want: `'x' is not of type 'object'

Failed validating 'type' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'task_id': {'type': 'string'}},
     'required': ['task_id'],
     'additionalProperties': False}

On instance:
    'x'`,
	},
	{
		name:   "get_task_by_id: root 1.5",
		schema: "rpc_exec_get_task_by_id",
		body:   `1.5`,
		want: `1.5 is not of type 'object'

Failed validating 'type' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'task_id': {'type': 'string'}},
     'required': ['task_id'],
     'additionalProperties': False}

On instance:
    1.5`,
	},
	{
		name:   "get_task_by_id: long root string",
		schema: "rpc_exec_get_task_by_id",
		body:   `"lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore"`,
		want: `'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore' is not of type 'object'

Failed validating 'type' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'task_id': {'type': 'string'}},
     'required': ['task_id'],
     'additionalProperties': False}

On instance:
    ('lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do '
     'eiusmod tempor incididunt ut labore')`,
	},
	{
		name:   "get_task_by_id: long root list",
		schema: "rpc_exec_get_task_by_id",
		body:   `["item number 0","item number 1","item number 2","item number 3","item number 4","item number 5","item number 6","item number 7"]`,
		want: `['item number 0', 'item number 1', 'item number 2', 'item number 3', 'item number 4', 'item number 5', 'item number 6', 'item number 7'] is not of type 'object'

Failed validating 'type' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'task_id': {'type': 'string'}},
     'required': ['task_id'],
     'additionalProperties': False}

On instance:
    ['item number 0',
     'item number 1',
     'item number 2',
     'item number 3',
     'item number 4',
     'item number 5',
     'item number 6',
     'item number 7']`,
	},
	{
		name:   "start: arguments is a number",
		schema: "rpc_exec_start_server_task",
		body:   `{"task_id":"a","arguments":5}`,
		want: `5 is not of type 'string'

Failed validating 'type' in schema['properties']['arguments']:
    {'type': 'string', 'additionalProperties': True}

On instance['arguments']:
    5`,
	},
	{
		name:   "update_task: tags",
		schema: "rpc_exec_update_task",
		body:   `{"task_id":"4fe5","tags":["x"]}`,
		want: `Additional properties are not allowed ('tags' was unexpected)

Failed validating 'additionalProperties' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'task_id': {'type': 'string'},
                    'host': {'type': 'string'},
                    'port': {'type': 'integer'},
                    'username': {'type': 'string'},
                    'password': {'type': 'string'},
                    'selection_criteria': {'type': 'string'},
                    'server_arguments': {'type': 'string',
                                         'additionalProperties': True},
                    'client_arguments': {'type': 'string',
                                         'additionalProperties': True}},
     'required': [],
     'additionalProperties': False}

On instance:
    {'task_id': '4fe5', 'tags': ['x']}`,
	},
	{
		name:   "update_task: port float",
		schema: "rpc_exec_update_task",
		body:   `{"task_id":"4fe5","port":1.5}`,
		want: `1.5 is not of type 'integer'

Failed validating 'type' in schema['properties']['port']:
    {'type': 'integer'}

On instance['port']:
    1.5`,
	},
	{
		name:   "update_task: two unknown",
		schema: "rpc_exec_update_task",
		body:   `{"zeta":1,"alpha":2,"port":"x"}`,
		want: `Additional properties are not allowed ('alpha', 'zeta' were unexpected)

Failed validating 'additionalProperties' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'task_id': {'type': 'string'},
                    'host': {'type': 'string'},
                    'port': {'type': 'integer'},
                    'username': {'type': 'string'},
                    'password': {'type': 'string'},
                    'selection_criteria': {'type': 'string'},
                    'server_arguments': {'type': 'string',
                                         'additionalProperties': True},
                    'client_arguments': {'type': 'string',
                                         'additionalProperties': True}},
     'required': [],
     'additionalProperties': False}

On instance:
    {'zeta': 1, 'alpha': 2, 'port': 'x'}`,
	},
	{
		name:   "update_user: data_qnt string",
		schema: "rpc_exec_update_user_info",
		body:   `{"user_id":"u","data_qnt":"many"}`,
		want: `'many' is not of type 'integer'

Failed validating 'type' in schema['properties']['data_qnt']:
    {'type': 'integer'}

On instance['data_qnt']:
    'many'`,
	},
	{
		name:   "update_user: sensors item",
		schema: "rpc_exec_update_user_info",
		body:   `{"user_id":"u","sensors":["camera",1,"ecu",2]}`,
		want: `2 is not of type 'string'

Failed validating 'type' in schema['properties']['sensors']['items']:
    {'type': 'string'}

On instance['sensors'][3]:
    2`,
	},
	{
		name:   "update_user: sensors string",
		schema: "rpc_exec_update_user_info",
		body:   `{"user_id":"u","sensors":"camera"}`,
		want: `'camera' is not of type 'array'

Failed validating 'type' in schema['properties']['sensors']:
    {'type': 'array', 'items': {'type': 'string'}}

On instance['sensors']:
    'camera'`,
	},
	{
		name:   "update_user: data_qnt whole float",
		schema: "rpc_exec_update_user_info",
		body:   `{"user_id":"u","data_qnt":1000.0}`,
		want:   "",
	},
	{
		name:   "update_user: missing user_id",
		schema: "rpc_exec_update_user_info",
		body:   `{"data_qnt":1}`,
		want: `'user_id' is a required property

Failed validating 'required' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'user_id': {'type': 'string'},
                    'data_qnt': {'type': 'integer'},
                    'avg_acc_contrib': {'type': 'number'},
                    'avg_disconnection_per_round': {'type': 'number'},
                    'sensors': {'type': 'array',
                                'items': {'type': 'string'}}},
     'required': ['user_id'],
     'additionalProperties': False}

On instance:
    {'data_qnt': 1}`,
	},
	{
		name:   "update_user: user_id int and unknown",
		schema: "rpc_exec_update_user_info",
		body:   `{"user_id":1,"zz":1}`,
		want: `Additional properties are not allowed ('zz' was unexpected)

Failed validating 'additionalProperties' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'user_id': {'type': 'string'},
                    'data_qnt': {'type': 'integer'},
                    'avg_acc_contrib': {'type': 'number'},
                    'avg_disconnection_per_round': {'type': 'number'},
                    'sensors': {'type': 'array',
                                'items': {'type': 'string'}}},
     'required': ['user_id'],
     'additionalProperties': False}

On instance:
    {'user_id': 1, 'zz': 1}`,
	},
	{
		name:   "requesting: missing",
		schema: "rpc_exec_client_requesting_task",
		body:   `{"user":"a"}`,
		want: `'user_id' is a required property

Failed validating 'required' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'type': 'object',
     'properties': {'user_id': {'type': 'string'}},
     'required': ['user_id'],
     'additionalProperties': False}

On instance:
    {'user': 'a'}`,
	},
	{
		name:   "enum",
		inline: `{"properties":{"c":{"enum":["red","green",1,null]}}}`,
		body:   `{"c":"blue"}`,
		want: `'blue' is not one of ['red', 'green', 1, None]

Failed validating 'enum' in schema['properties']['c']:
    {'enum': ['red', 'green', 1, None]}

On instance['c']:
    'blue'`,
	},
	{
		name:   "const",
		inline: `{"properties":{"c":{"const":{"a":1}}}}`,
		body:   `{"c":"blue"}`,
		want: `{'a': 1} was expected

Failed validating 'const' in schema['properties']['c']:
    {'const': {'a': 1}}

On instance['c']:
    'blue'`,
	},
	{
		name:   "minLength 1",
		inline: `{"properties":{"s":{"type":"string","minLength":1}}}`,
		body:   `{"s":""}`,
		want: `'' should be non-empty

Failed validating 'minLength' in schema['properties']['s']:
    {'type': 'string', 'minLength': 1}

On instance['s']:
    ''`,
	},
	{
		name:   "minLength 3",
		inline: `{"properties":{"s":{"type":"string","minLength":3}}}`,
		body:   `{"s":"ab"}`,
		want: `'ab' is too short

Failed validating 'minLength' in schema['properties']['s']:
    {'type': 'string', 'minLength': 3}

On instance['s']:
    'ab'`,
	},
	{
		name:   "maxLength 0",
		inline: `{"properties":{"s":{"maxLength":0}}}`,
		body:   `{"s":"a"}`,
		want: `'a' is expected to be empty

Failed validating 'maxLength' in schema['properties']['s']:
    {'maxLength': 0}

On instance['s']:
    'a'`,
	},
	{
		name:   "maxLength 2",
		inline: `{"properties":{"s":{"maxLength":2}}}`,
		body:   `{"s":"abc"}`,
		want: `'abc' is too long

Failed validating 'maxLength' in schema['properties']['s']:
    {'maxLength': 2}

On instance['s']:
    'abc'`,
	},
	{
		name:   "maxLength unicode",
		inline: `{"properties":{"s":{"maxLength":2}}}`,
		body:   `{"s":"\u00e9\u00e9"}`,
		want:   "",
	},
	{
		name:   "pattern",
		inline: `{"properties":{"s":{"type":"string","pattern":"^[a-z]+$"}}}`,
		body:   `{"s":"ABC"}`,
		want: `'ABC' does not match '^[a-z]+$'

Failed validating 'pattern' in schema['properties']['s']:
    {'type': 'string', 'pattern': '^[a-z]+$'}

On instance['s']:
    'ABC'`,
	},
	{
		name:   "minimum",
		inline: `{"properties":{"n":{"minimum":5}}}`,
		body:   `{"n":4}`,
		want: `4 is less than the minimum of 5

Failed validating 'minimum' in schema['properties']['n']:
    {'minimum': 5}

On instance['n']:
    4`,
	},
	{
		name:   "minimum float",
		inline: `{"properties":{"n":{"minimum":0.5}}}`,
		body:   `{"n":0.25}`,
		want: `0.25 is less than the minimum of 0.5

Failed validating 'minimum' in schema['properties']['n']:
    {'minimum': 0.5}

On instance['n']:
    0.25`,
	},
	{
		name:   "maximum",
		inline: `{"properties":{"n":{"maximum":5}}}`,
		body:   `{"n":6.5}`,
		want: `6.5 is greater than the maximum of 5

Failed validating 'maximum' in schema['properties']['n']:
    {'maximum': 5}

On instance['n']:
    6.5`,
	},
	{
		name:   "maximum 0.1",
		inline: `{"properties":{"n":{"maximum":0.1}}}`,
		body:   `{"n":0.1}`,
		want:   "",
	},
	{
		name:   "exclusiveMinimum",
		inline: `{"properties":{"n":{"exclusiveMinimum":5}}}`,
		body:   `{"n":5}`,
		want: `5 is less than or equal to the minimum of 5

Failed validating 'exclusiveMinimum' in schema['properties']['n']:
    {'exclusiveMinimum': 5}

On instance['n']:
    5`,
	},
	{
		name:   "exclusiveMaximum",
		inline: `{"properties":{"n":{"exclusiveMaximum":5}}}`,
		body:   `{"n":5.0}`,
		want: `5.0 is greater than or equal to the maximum of 5

Failed validating 'exclusiveMaximum' in schema['properties']['n']:
    {'exclusiveMaximum': 5}

On instance['n']:
    5.0`,
	},
	{
		name:   "minItems 1",
		inline: `{"properties":{"l":{"minItems":1}}}`,
		body:   `{"l":[]}`,
		want: `[] should be non-empty

Failed validating 'minItems' in schema['properties']['l']:
    {'minItems': 1}

On instance['l']:
    []`,
	},
	{
		name:   "minItems 2",
		inline: `{"properties":{"l":{"minItems":2}}}`,
		body:   `{"l":[1]}`,
		want: `[1] is too short

Failed validating 'minItems' in schema['properties']['l']:
    {'minItems': 2}

On instance['l']:
    [1]`,
	},
	{
		name:   "maxItems 0",
		inline: `{"properties":{"l":{"maxItems":0}}}`,
		body:   `{"l":[1]}`,
		want: `[1] is expected to be empty

Failed validating 'maxItems' in schema['properties']['l']:
    {'maxItems': 0}

On instance['l']:
    [1]`,
	},
	{
		name:   "maxItems 1",
		inline: `{"properties":{"l":{"maxItems":1}}}`,
		body:   `{"l":[1,2]}`,
		want: `[1, 2] is too long

Failed validating 'maxItems' in schema['properties']['l']:
    {'maxItems': 1}

On instance['l']:
    [1, 2]`,
	},
	{
		name:   "minProperties 1",
		inline: `{"minProperties":1}`,
		body:   `{}`,
		want: `{} should be non-empty

Failed validating 'minProperties' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'minProperties': 1}

On instance:
    {}`,
	},
	{
		name:   "minProperties 2",
		inline: `{"minProperties":2}`,
		body:   `{"a":1}`,
		want: `{'a': 1} does not have enough properties

Failed validating 'minProperties' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'minProperties': 2}

On instance:
    {'a': 1}`,
	},
	{
		name:   "maxProperties 0",
		inline: `{"maxProperties":0}`,
		body:   `{"a":1}`,
		want: `{'a': 1} is expected to be empty

Failed validating 'maxProperties' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'maxProperties': 0}

On instance:
    {'a': 1}`,
	},
	{
		name:   "maxProperties 1",
		inline: `{"maxProperties":1}`,
		body:   `{"a":1,"b":2}`,
		want: `{'a': 1, 'b': 2} has too many properties

Failed validating 'maxProperties' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'maxProperties': 1}

On instance:
    {'a': 1, 'b': 2}`,
	},
	{
		name:   "items array form",
		inline: `{"items":[{"type":"string"},{"type":"integer"}]}`,
		body:   `["a","b"]`,
		want: `'b' is not of type 'integer'

Failed validating 'type' in schema['items'][1]:
    {'type': 'integer'}

On instance[1]:
    'b'`,
	},
	{
		name:   "additionalItems false",
		inline: `{"items":[{"type":"string"}],"additionalItems":false}`,
		body:   `["a",1,2]`,
		want: `Additional items are not allowed (1, 2 were unexpected)

Failed validating 'additionalItems' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'items': [{'type': 'string'}],
     'additionalItems': False}

On instance:
    ['a', 1, 2]`,
	},
	{
		name:   "additionalItems one",
		inline: `{"items":[{"type":"string"}],"additionalItems":false}`,
		body:   `["a",{"k":1}]`,
		want: `Additional items are not allowed ({'k': 1} was unexpected)

Failed validating 'additionalItems' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'items': [{'type': 'string'}],
     'additionalItems': False}

On instance:
    ['a', {'k': 1}]`,
	},
	{
		name:   "additionalItems schema",
		inline: `{"items":[{"type":"string"}],"additionalItems":{"type":"string"}}`,
		body:   `["a","b",3]`,
		want: `3 is not of type 'string'

Failed validating 'type' in schema['additionalItems']:
    {'type': 'string'}

On instance[2]:
    3`,
	},
	{
		name:   "false schema property",
		inline: `{"properties":{"x":false}}`,
		body:   `{"x":1}`,
		want: `False schema does not allow 1

Failed validating None in schema:
    False

On instance:
    1`,
	},
	{
		name:   "items false",
		inline: `{"items":false}`,
		body:   `[1,2]`,
		want: `False schema does not allow 1

Failed validating None in schema:
    False

On instance:
    1`,
	},
	{
		name:   "additionalProperties schema",
		inline: `{"properties":{"a":{}},"additionalProperties":{"type":"integer"}}`,
		body:   `{"a":"x","b":"y","c":1}`,
		want: `'y' is not of type 'integer'

Failed validating 'type' in schema['additionalProperties']:
    {'type': 'integer'}

On instance['b']:
    'y'`,
	},
	{
		name:   "type list",
		inline: `{"properties":{"t":{"type":["string","null"]}}}`,
		body:   `{"t":1}`,
		want: `1 is not of type 'string', 'null'

Failed validating 'type' in schema['properties']['t']:
    {'type': ['string', 'null']}

On instance['t']:
    1`,
	},
	{
		name:   "format not asserted",
		inline: `{"properties":{"e":{"type":"string","format":"email"}}}`,
		body:   `{"e":"not an email","f":1,"g":2}`,
		want:   "",
	},
	{
		name:   "type before minimum",
		inline: `{"properties":{"n":{"minimum":5,"type":"integer"}}}`,
		body:   `{"n":"x"}`,
		want: `'x' is not of type 'integer'

Failed validating 'type' in schema['properties']['n']:
    {'minimum': 5, 'type': 'integer'}

On instance['n']:
    'x'`,
	},
	{
		name:   "two errors same place",
		inline: `{"properties":{"s":{"minLength":5,"pattern":"^a"}}}`,
		body:   `{"s":"bc"}`,
		want: `'bc' is too short

Failed validating 'minLength' in schema['properties']['s']:
    {'minLength': 5, 'pattern': '^a'}

On instance['s']:
    'bc'`,
	},
	{
		name:   "matches type ranks lower",
		inline: `{"properties":{"a":{"type":"string","minLength":5},"b":{"maxLength":1}},"required":["z"]}`,
		body:   `{"a":"x","b":"yy"}`,
		want: `'z' is a required property

Failed validating 'required' in schema:
    {'$schema': 'http://json-schema.org/draft-07/schema#',
     'properties': {'a': {'type': 'string', 'minLength': 5},
                    'b': {'maxLength': 1}},
     'required': ['z']}

On instance:
    {'a': 'x', 'b': 'yy'}`,
	},
	{
		name:   "deep path vs shallow",
		inline: `{"properties":{"a":{"properties":{"b":{"type":"string"}}},"c":{"type":"string"}}}`,
		body:   `{"a":{"b":1},"c":2}`,
		want: `2 is not of type 'string'

Failed validating 'type' in schema['properties']['c']:
    {'type': 'string'}

On instance['c']:
    2`,
	},
}

func TestSchemaErrorsAreTheOriginalsPythonText(t *testing.T) {
	named, err := loadSchemas(slices.Collect(maps.Keys(rpcs)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pyCases {
		t.Run(c.name, func(t *testing.T) {
			s := named[c.schema]
			if c.inline != "" {
				doc := `{"$schema":"` + draft07 + `",` + strings.TrimPrefix(c.inline, "{")
				m, err := compileSchemas(map[string][]byte{"inline": []byte(doc)})
				if err != nil {
					t.Fatal(err)
				}
				s = m["inline"]
			}
			if got := s.check([]byte(c.body)); got != c.want {
				t.Errorf("body %s\n got:\n%s\nwant:\n%s", c.body, got, c.want)
			}
		})
	}
}

func TestPythonFloatRepr(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0.0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1.0, "1.0"}, {-3.0, "-3.0"}, {0.1, "0.1"},
		{2.5, "2.5"}, {100.0, "100.0"}, {1e15, "1000000000000000.0"}, {1e16, "1e+16"},
		{1.5e16, "1.5e+16"}, {123456789.123, "123456789.123"}, {0.0001, "0.0001"}, {1e-05, "1e-05"},
		{1.234e-07, "1.234e-07"}, {5e-324, "5e-324"}, {1.7976931348623157e+308, "1.7976931348623157e+308"},
		{1e+22, "1e+22"}, {-1e-10, "-1e-10"}, {0.30000000000000004, "0.30000000000000004"},
		{9007199254740992.0, "9007199254740992.0"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"},
	} {
		if got := pyFloatRepr(c.f); got != c.want {
			t.Errorf("repr(%v) = %s, want %s", c.f, got, c.want)
		}
	}
}

func TestPythonStrRepr(t *testing.T) {
	for _, c := range []struct{ s, want string }{
		{"", "''"}, {"plain", "'plain'"}, {"it's", `"it's"`}, {`say "hi"`, `'say "hi"'`},
		{`both ' and "`, `'both \' and "'`}, {`back\slash`, `'back\\slash'`},
		{"tab\there\nnl\rcr", `'tab\there\nnl\rcr'`}, {"\x00\x1f\x7f", `'\x00\x1f\x7f'`},
		{"\u00a0\u00ad\u200b\u2028\ufeff", `'\xa0\xad\u200b\u2028\ufeff'`},
		{"\u00e9\u0301\U0001F600", "'\u00e9\u0301\U0001F600'"}, {"\U000E0001", `'\U000e0001'`}, {"\u0085", `'\x85'`},
	} {
		if got := pyRepr(c.s); got != c.want {
			t.Errorf("repr(%q) = %s, want %s", c.s, got, c.want)
		}
		if got := strReprLen(c.s); got != len([]rune(c.want)) {
			t.Errorf("len(repr(%q)) = %d, want %d", c.s, got, len([]rune(c.want)))
		}
	}
}

// A schema with a keyword whose errors are not translated, or of another
// draft, does not load: its messages could differ from Python's.
func TestSchemasWithUntranslatedKeywordsDoNotLoad(t *testing.T) {
	for _, doc := range []string{
		`{"$schema":"` + draft07 + `","anyOf":[{"type":"string"}]}`,
		`{"$schema":"` + draft07 + `","properties":{"a":{"$ref":"#"}}}`,
		`{"$schema":"` + draft07 + `","items":[{"not":{}}]}`,
		`{"$schema":"` + draft07 + `","properties":{"a":{"format":"regex"}}}`,
		`{"$schema":"http://json-schema.org/draft-04/schema#","type":"object"}`,
		`{"type":"object"}`,
	} {
		if _, err := compileSchemas(map[string][]byte{"x": []byte(doc)}); err == nil {
			t.Errorf("%s loaded", doc)
		}
	}
}

// pprint of a deeply nested value is quadratic in its depth; the text
// stops at textLimit.
func TestSchemaErrorTextIsBounded(t *testing.T) {
	named, err := loadSchemas([]string{"rpc_exec_get_task_by_id"})
	if err != nil {
		t.Fatal(err)
	}
	const depth = 5000
	body := `{"task_id":` + strings.Repeat("[0,", depth) + "0" + strings.Repeat("]", depth) + "}"
	start := time.Now()
	got := named["rpc_exec_get_task_by_id"].check([]byte(body))
	if !strings.HasPrefix(got, "[0, [0, [0, ") || !strings.HasSuffix(got, "longer than 64 KiB]") ||
		len(got) > len(body)*4+textLimit+100 {
		t.Fatalf("%d bytes: %.200s … %s", len(got), got, got[max(0, len(got)-200):])
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}
