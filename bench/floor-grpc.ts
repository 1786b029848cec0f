/**
 * Floor F4: the naive grpc-js Check server, proto-loader objects in and out, always OK with one
 * header. Run as its own process: node floor-grpc.js <port>
 */
import { loadPackageDefinition, Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { authorizationPackage } from '../src/transport/envoy-proto.js';

const port = Number(process.argv[2]);
const pkg = loadPackageDefinition(authorizationPackage()) as unknown as {
  envoy: { service: { auth: { v3: { Authorization: { service: Parameters<Server['addService']>[0] } } } } };
};
const server = new Server();
server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
  Check(_call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) {
    cb(null, { status: { code: 0 }, ok_response: { headers: [{ header: { key: 'x-user-id', value: 'user' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }] } });
  },
});
server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  process.send?.('ready');
});
